//! DescribeUserScramCredentials (key 50), v0.
//!
//! The mechanisms and iteration counts of users' SCRAM credentials (never salts or
//! keys). A null or empty user list describes every user that has one. A user without
//! credentials is RESOURCE_NOT_FOUND; a user named twice is DUPLICATE_RESOURCE. Needs
//! DESCRIBE on the cluster. Credentials are kept for SASL/SCRAM listeners; Gregor's
//! listeners are PLAINTEXT so far, so none authenticates with them yet.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use gregor_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn result(user: &str, error: ErrorCode, message: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult {
        user: user.to_string(),
        error_code: error.code(),
        error_message: Some(message.to_string()),
        ..DescribeUserScramCredentialsResult::default()
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !broker.authorize(context, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return DescribeUserScramCredentialsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some("Cluster authorization failed.".to_string()),
            ..DescribeUserScramCredentialsResponse::default()
        };
    }
    let image = broker.image();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), credential) in image.scram_credentials() {
        by_user.entry(user).or_default().push(CredentialInfo {
            mechanism: *mechanism,
            iterations: credential.iterations,
            ..CredentialInfo::default()
        });
    }
    let found = |user: &str, infos: Vec<CredentialInfo>| DescribeUserScramCredentialsResult {
        user: user.to_string(),
        error_code: ErrorCode::None.code(),
        credential_infos: infos,
        ..DescribeUserScramCredentialsResult::default()
    };
    let requested: Vec<String> = request.users.unwrap_or_default().into_iter().map(|user| user.name).collect();
    let results = if requested.is_empty() {
        by_user.into_iter().map(|(user, infos)| found(user, infos)).collect()
    } else {
        let mut seen = BTreeSet::new();
        let duplicated: BTreeSet<&str> =
            requested.iter().filter(|user| !seen.insert(user.as_str())).map(String::as_str).collect();
        let mut reported = BTreeSet::new();
        requested
            .iter()
            .filter(|user| reported.insert(user.as_str()))
            .map(|user| {
                if duplicated.contains(user.as_str()) {
                    return result(
                        user,
                        ErrorCode::DuplicateResource,
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    );
                }
                match by_user.get(user.as_str()) {
                    Some(infos) => found(user, infos.clone()),
                    None => result(
                        user,
                        ErrorCode::ResourceNotFound,
                        "Attempt to describe a user credential that does not exist",
                    ),
                }
            })
            .collect()
    };
    DescribeUserScramCredentialsResponse {
        error_code: ErrorCode::None.code(),
        results,
        ..DescribeUserScramCredentialsResponse::default()
    }
}
