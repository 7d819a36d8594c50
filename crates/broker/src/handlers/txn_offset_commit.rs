//! TxnOffsetCommit (key 28), v0-v5.
//!
//! A transactional producer's offsets for a group: the shard
//! (`gregor_group::offsets`) validates them (unknown topic or partition, metadata size,
//! and from v3 the KIP-447 group fields: generation, member id, instance id) and returns
//! OffsetCommit records that the coordinator runtime appends to the group's
//! `__consumer_offsets` partition as one transactional batch of the request's producer
//! id and epoch. They stay pending (OffsetFetch with require_stable answers
//! UNSTABLE_OFFSET_COMMIT) until the producer's COMMIT or ABORT marker is written to
//! that partition. A producer fenced on that partition answers INVALID_PRODUCER_EPOCH
//! on every partition.
//!
//! KIP-890 part 2: under transaction version 2 a v5 request adds the group's
//! partition to the transaction itself (the client sends no AddOffsetsToTxn).
//!
//! KIP-890 part 1: with `transaction.partition.verification.enable`, the group's
//! `__consumer_offsets` partition must already be in the producer's ongoing
//! transaction (AddOffsetsToTxn put it there); the transaction coordinator is asked
//! under the group shard's lock, which is also where that partition's markers
//! complete, so a late commit cannot slip in after its transaction ended. A
//! partition not in the transaction answers INVALID_TXN_STATE; a coordinator that
//! cannot answer yet COORDINATOR_NOT_AVAILABLE, which clients retry.
//!
//! With an authorizer: WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group (else
//! GROUP_AUTHORIZATION_FAILED), READ on each topic (else its partitions are
//! TOPIC_AUTHORIZATION_FAILED and the others are committed).

use crate::broker::Broker;
use crate::coordinator::{ClientSource, OFFSETS_TOPIC};
use crate::request_context::RequestContext;
use gregor_group::{partition_for_group, Effects};
use gregor_metadata::acl::operation;
use gregor_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use gregor_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

/// The first version that, under transaction version 2, adds the group's partition
/// to the transaction itself (KIP-890 part 2).
const IMPLICIT_ADD_SINCE_VERSION: i16 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    mut request: TxnOffsetCommitRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    let access = broker.access(context);
    if !access.allows_transactional_id(operation::WRITE, &request.transactional_id) {
        return ResponseBody::TxnOffsetCommit(every_partition(&request)(ErrorCode::TransactionalIdAuthorizationFailed));
    }
    if !access.allows_group(operation::READ, &group_id) {
        return ResponseBody::TxnOffsetCommit(every_partition(&request)(ErrorCode::GroupAuthorizationFailed));
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|topic| access.allows_topic(operation::READ, &topic.name));
    let refused = every_partition(&TxnOffsetCommitRequest { topics: denied, ..TxnOffsetCommitRequest::default() })(
        ErrorCode::TopicAuthorizationFailed,
    );
    if allowed.is_empty() && !refused.topics.is_empty() {
        return ResponseBody::TxnOffsetCommit(refused);
    }
    request.topics = allowed;
    let failed = every_partition(&request);
    let unverified = every_partition(&request);
    let offsets_partition = broker
        .image()
        .topic(OFFSETS_TOPIC)
        .and_then(|topic| i32::try_from(topic.partitions.len()).ok())
        .map(|count| partition_for_group(&group_id, count));
    // KIP-890 part 2: a v5 request under transaction version 2 comes without
    // AddOffsetsToTxn; the group's partition joins the transaction here.
    if header.request_api_version >= IMPLICIT_ADD_SINCE_VERSION && broker.txns.transaction_version(broker) >= 2 {
        if let Some(index) = offsets_partition {
            let partitions = [(OFFSETS_TOPIC.to_string(), index)];
            let added = broker
                .txns
                .add_partitions_implicitly(
                    broker,
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    &partitions,
                )
                .await;
            let code = match added {
                Ok(errors) => errors.values().copied().find(|code| *code != ErrorCode::None).unwrap_or(ErrorCode::None),
                Err(code) => code,
            };
            let code = offset_commit_error(code);
            if code != ErrorCode::None {
                return ResponseBody::TxnOffsetCommit(failed(code));
            }
        }
    }
    let verifier = offsets_partition
        .filter(|_| broker.config().transaction_partition_verification_enable)
        .map(|index| (Arc::clone(broker), index));
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            if let Some((broker, index)) = verifier {
                let verified = broker.txns.verify_produce(
                    &broker,
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    OFFSETS_TOPIC,
                    index,
                );
                if let Err(error) = verified {
                    let mut effects = Effects::default();
                    effects.reply(context.reply, unverified(offset_commit_error(error.error_code())));
                    return effects;
                }
            }
            shard.txn_offset_commit(context, request, topics)
        })
        .await;
    match decided.unwrap_or_else(|code| ResponseBody::TxnOffsetCommit(failed(code))) {
        ResponseBody::TxnOffsetCommit(mut response) => {
            response.topics.extend(refused.topics);
            ResponseBody::TxnOffsetCommit(response)
        }
        other => other,
    }
}

/// A transaction coordinator's answer as this API reports it: the produce mapping,
/// except that "not yet" is COORDINATOR_NOT_AVAILABLE, which clients retry after
/// finding the group coordinator again (Kafka's group coordinator maps it so too).
fn offset_commit_error(code: ErrorCode) -> ErrorCode {
    match crate::txn_coordinator::produce_error(code) {
        ErrorCode::NotEnoughReplicas => ErrorCode::CoordinatorNotAvailable,
        code => code,
    }
}

/// The answer that gives every requested partition `code`.
fn every_partition(request: &TxnOffsetCommitRequest) -> impl FnOnce(ErrorCode) -> TxnOffsetCommitResponse {
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|topic| (topic.name.clone(), topic.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>()))
        .collect();
    move |code| TxnOffsetCommitResponse {
        topics: shape
            .into_iter()
            .map(|(name, partitions)| TxnOffsetCommitResponseTopic {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| TxnOffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..TxnOffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..TxnOffsetCommitResponseTopic::default()
            })
            .collect(),
        ..TxnOffsetCommitResponse::default()
    }
}
