//! FindCoordinator (key 10), v0-v6.
//!
//! A group is coordinated by the leader of its partition of `__consumer_offsets`
//! (Java's hash of the group id modulo the partition count); the first lookup of a
//! group creates the topic (`offsets.topic.num.partitions` partitions, compacted), as
//! Kafka does. The answer is the leader's endpoint on the listener the request came
//! in on, or COORDINATOR_NOT_AVAILABLE while that partition has no leader alive there
//! ([`crate::cluster_view::coordinator`]). v0-v3 ask for one key, v4+ for a batch of
//! keys answered one by one. Key type 1 (transaction) is answered the same way from
//! `__transaction_state` (`transaction.state.log.num.partitions` partitions,
//! compacted); other key types (2, share groups) are INVALID_REQUEST.
//!
//! With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) or on
//! the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use crate::authorization::Access;
use crate::broker::Broker;
use crate::cluster_view::coordinator;
use crate::coordinator::OFFSETS_TOPIC;
use crate::request_context::RequestContext;
use crate::txn_coordinator::TXN_TOPIC;
use gregor_group::shard::partition_for_group;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_txn::record::partition_for_transactional_id;
use std::sync::Arc;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let access = broker.access(context);
    let batched = header.request_api_version >= 4;
    let keys = if batched { request.coordinator_keys } else { vec![request.key] };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(broker, context, &access, request.key_type, key).await);
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

async fn find(
    broker: &Arc<Broker>,
    context: &RequestContext,
    access: &Access,
    key_type: i8,
    key: String,
) -> Coordinator {
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
    let placed = match key_type {
        KEY_TYPE_GROUP => {
            broker.groups.ensure_topic(broker).await.map(|count| (OFFSETS_TOPIC, partition_for_group(&key, count)))
        }
        KEY_TYPE_TRANSACTION => {
            broker.txns.ensure_topic(broker).await.map(|count| (TXN_TOPIC, partition_for_transactional_id(&key, count)))
        }
        _ => return error(ErrorCode::InvalidRequest, &format!("Unsupported key type {key_type}.")),
    };
    let found = placed.and_then(|(topic, index)| coordinator(&broker.image(), topic, index, context.listener_name()));
    let node = match found {
        Ok(node) => node,
        Err(code) => return error(code, code.message()),
    };
    Coordinator {
        key,
        node_id: node.id,
        host: node.host,
        port: node.port,
        error_code: ErrorCode::None.code(),
        error_message: None,
        ..Coordinator::default()
    }
}
