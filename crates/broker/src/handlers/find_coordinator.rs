//! FindCoordinator (key 10), v0-v6.
//!
//! Every group is coordinated by this node: the first lookup of a group creates
//! `__consumer_offsets` (`offsets.topic.num.partitions` partitions, compacted), as
//! Kafka does, and the answer names this node's first advertised listener. v0-v3 ask
//! for one key, v4+ for a batch of keys answered one by one. Key type 1 (transaction)
//! is answered the same way after creating `__transaction_state`
//! (`transaction.state.log.num.partitions` partitions, compacted); other key types
//! (2, share groups) are INVALID_REQUEST.
//!
//! With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) or on
//! the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use crate::authorization::{Access, Session};
use crate::broker::Broker;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    session: &Session,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let access = broker.access(session);
    let batched = header.request_api_version >= 4;
    let keys = if batched { request.coordinator_keys } else { vec![request.key] };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(broker, &access, request.key_type, key).await);
    }
    if batched {
        return FindCoordinatorResponse { coordinators, ..FindCoordinatorResponse::default() };
    }
    let single = coordinators.pop().unwrap_or_default();
    FindCoordinatorResponse {
        error_code: single.error_code,
        error_message: single.error_message,
        node_id: single.node_id,
        host: single.host,
        port: single.port,
        ..FindCoordinatorResponse::default()
    }
}

async fn find(broker: &Arc<Broker>, access: &Access, key_type: i8, key: String) -> Coordinator {
    let error = |code: ErrorCode, message: &str| Coordinator {
        key: key.clone(),
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code: code.code(),
        error_message: Some(message.to_string()),
        ..Coordinator::default()
    };
    let (allowed, refusal) = match key_type {
        KEY_TYPE_GROUP => (access.allows_group(operation::DESCRIBE, &key), ErrorCode::GroupAuthorizationFailed),
        KEY_TYPE_TRANSACTION => {
            (access.allows_transactional_id(operation::DESCRIBE, &key), ErrorCode::TransactionalIdAuthorizationFailed)
        }
        _ => (true, ErrorCode::None),
    };
    if !allowed {
        return error(refusal, refusal.message());
    }
    let ensured = match key_type {
        KEY_TYPE_GROUP => broker.groups.ensure_topic(broker).await,
        KEY_TYPE_TRANSACTION => broker.txns.ensure_topic(broker).await,
        _ => return error(ErrorCode::InvalidRequest, &format!("Unsupported key type {key_type}.")),
    };
    if let Err(code) = ensured {
        return error(code, "The coordinator is not available.");
    }
    let Some(endpoint) = broker.endpoints.first() else {
        return error(ErrorCode::CoordinatorNotAvailable, "The coordinator is not available.");
    };
    Coordinator {
        key,
        node_id: broker.node_id,
        host: endpoint.host.clone(),
        port: i32::from(endpoint.port),
        error_code: ErrorCode::None.code(),
        error_message: None,
        ..Coordinator::default()
    }
}
