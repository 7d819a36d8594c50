//! AddOffsetsToTxn (key 25), v0-v4.
//!
//! The consumer group's `__consumer_offsets` partition
//! (`partition_for_group(group_id, partitions)`, creating the topic if it does not
//! exist yet) joins the transaction like a data partition, so the group's
//! TxnOffsetCommits get the transaction's COMMIT or ABORT marker. Decided by the
//! transaction coordinator shard of the transactional id
//! (`gregor_txn::add_offsets`).
//!
//! With an authorizer: WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and READ on the group (else
//! GROUP_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::OFFSETS_TOPIC;
use crate::request_context::RequestContext;
use gregor_group::partition_for_group;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let failed =
        |code: ErrorCode| AddOffsetsToTxnResponse { error_code: code.code(), ..AddOffsetsToTxnResponse::default() };
    let access = broker.access(context);
    if !access.allows_transactional_id(operation::WRITE, &request.transactional_id) {
        return failed(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    if !access.allows_group(operation::READ, &request.group_id) {
        return failed(ErrorCode::GroupAuthorizationFailed);
    }
    let partitions = match broker.groups.ensure_topic(broker).await {
        Ok(partitions) => partitions,
        Err(code) => return failed(code),
    };
    let group_partition = (OFFSETS_TOPIC.to_string(), partition_for_group(&request.group_id, partitions));
    let transactional_id = request.transactional_id.clone();
    let decided = broker
        .txns
        .decide(broker, header.request_api_version, &transactional_id, move |shard, context| {
            shard.add_offsets_to_txn(context, request, group_partition)
        })
        .await;
    match decided {
        Ok(ResponseBody::AddOffsetsToTxn(response)) => response,
        Ok(_) => failed(ErrorCode::UnknownServerError),
        Err(code) => failed(code),
    }
}
