//! AlterUserScramCredentials (key 51), v0.
//!
//! Deletes and upserts users' SCRAM credentials through the controller, one result
//! per user: the client sends the salted password, the controller stores the SCRAM
//! StoredKey and ServerKey derived from it (`gregor_metadata::scram`). Refusals:
//! an unknown mechanism (UNSUPPORTED_SASL_MECHANISM), iterations outside 4096-16384,
//! an empty user, salt or salted password (UNACCEPTABLE_CREDENTIAL), deleting a
//! credential that does not exist (RESOURCE_NOT_FOUND), a user altered twice in one
//! request (DUPLICATE_RESOURCE). Needs ALTER on the cluster.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::{alter_scram_credentials, ScramUpsertion};
use gregor_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use gregor_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::collections::BTreeSet;
use std::sync::Arc;

fn result(user: String, error: ErrorCode, message: Option<String>) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult {
        user,
        error_code: error.code(),
        error_message: message,
        ..AlterUserScramCredentialsResult::default()
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<(String, i8)> =
        request.deletions.into_iter().map(|deletion| (deletion.name, deletion.mechanism)).collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .into_iter()
        .map(|upsertion| ScramUpsertion {
            user: upsertion.name,
            mechanism: upsertion.mechanism,
            iterations: upsertion.iterations,
            salt: upsertion.salt,
            salted_password: upsertion.salted_password,
        })
        .collect();
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        let mut seen = BTreeSet::new();
        let users = deletions.iter().map(|(user, _)| user).chain(upsertions.iter().map(|upsertion| &upsertion.user));
        let results = users
            .filter(|user| seen.insert(user.as_str()))
            .map(|user| {
                result(
                    user.clone(),
                    ErrorCode::ClusterAuthorizationFailed,
                    Some("Cluster authorization failed.".into()),
                )
            })
            .collect();
        return AlterUserScramCredentialsResponse { results, ..AlterUserScramCredentialsResponse::default() };
    }
    let users: Vec<String> = {
        let mut seen = BTreeSet::new();
        deletions
            .iter()
            .map(|(user, _)| user.clone())
            .chain(upsertions.iter().map(|upsertion| upsertion.user.clone()))
            .filter(|user| seen.insert(user.clone()))
            .collect()
    };
    let outcomes = broker.decide(move |image, _context| alter_scram_credentials(image, &deletions, &upsertions)).await;
    let results = match outcomes {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|(user, outcome)| match outcome {
                Ok(()) => result(user, ErrorCode::None, None),
                Err(error) => result(user, error.code, error.message),
            })
            .collect(),
        Err(error) => users.into_iter().map(|user| result(user, error.error_code(), Some(error.to_string()))).collect(),
    };
    AlterUserScramCredentialsResponse { results, ..AlterUserScramCredentialsResponse::default() }
}
