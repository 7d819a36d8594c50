//! Produce (key 0), v0-v13.
//!
//! Each partition's record set is validated and appended by the storage crate
//! without decoding records (CRC, sizes, timestamps, producer sequence; offsets,
//! leader epoch and log-append time stamped into the batch headers). One node is the
//! whole ISR, so acks=1 and acks=all are both answered once the append returns; with
//! acks=all, `min.insync.replicas` above the ISR size is NOT_ENOUGH_REPLICAS. acks=0
//! gets no answer, and a failure closes the connection so the client notices, as
//! Kafka does.
//!
//! Per version: v0-v2 carry legacy message sets, converted to v2 batches on the way
//! in; v3+ must carry magic 2 batches; v2+ returns the log-append time; v5+ the log
//! start offset; v8+ per-record errors and an error message; v13 names topics by id
//! (UNKNOWN_TOPIC_ID).
//!
//! Transactional batches (KIP-98) are appended like idempotent ones and open their
//! producer's transaction in the partition, holding the last stable offset until
//! the coordinator's marker. The storage crate checks them against the producer's
//! state, and its refusals reach the client through [`AppendError::error_code`]:
//! an older producer epoch is INVALID_PRODUCER_EPOCH, a non-transactional write
//! inside an open transaction INVALID_TXN_STATE. With
//! `transaction.partition.verification.enable` (KIP-890 part 1), a batch that would
//! open a transaction in a partition is first checked with the transaction
//! coordinator, under the partition's append lock, so a late or stray batch cannot
//! leave a transaction hanging (`TxnCoordinator::verify_produce`).
//!
//! With the `transaction.version` feature at 2, Produce v12+ adds its partitions to
//! the transaction itself (KIP-890 part 2) before they are verified and appended.
//!
//! Clients may not write to the internal topics (`__consumer_offsets`,
//! `__transaction_state`): INVALID_TOPIC_EXCEPTION, as Kafka answers.
//!
//! A partition another broker leads is NOT_LEADER_OR_FOLLOWER; from v10 the answer
//! names that partition's current leader and its endpoint on the request's listener
//! (KIP-951), so the client sends there without waiting for a metadata refresh.
//!
//! With an authorizer: WRITE on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions) and, for a transactional producer, WRITE on its transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition).

use crate::broker::Broker;
use crate::cluster_view::{current_leader, led_elsewhere};
use crate::dispatch::Outcome;
use crate::legacy::upconvert_message_set;
use crate::partitions::Partition;
use crate::request_context::RequestContext;
use crate::time::now_ms;
use bytes::{Bytes, BytesMut};
use gregor_metadata::acl::operation;
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::records::{split_record_set, RecordBatchHeader, MAGIC_V2};
use gregor_protocol::{ErrorCode, ResponseBody};
use gregor_storage::AppendError;
use std::sync::Arc;

/// The first Produce version whose transactional batches add their partitions to
/// the transaction implicitly under transaction version 2 (KIP-890 part 2).
const IMPLICIT_ADD_SINCE_VERSION: i16 = 12;
/// The first version whose answers carry the current leader (KIP-951).
const CURRENT_LEADER_SINCE_VERSION: i16 = 10;

/// One partition's part of the request, resolved before the blocking append.
struct Work {
    topic_index: usize,
    partition_index: i32,
    target: Result<(Arc<Partition>, BytesMut), ErrorCode>,
}

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: ProduceRequest,
) -> Outcome {
    let version = header.request_api_version;
    let access = broker.access(context);
    let transactional_id_denied =
        request.transactional_id.as_deref().is_some_and(|id| !access.allows_transactional_id(operation::WRITE, id));
    let acks = request.acks;
    let mut responses: Vec<TopicProduceResponse> = Vec::with_capacity(request.topic_data.len());
    let mut work = Vec::new();
    let image = broker.image();
    let config = broker.config();
    let ack_valid = matches!(acks, -1..=1);
    let transactional_id = request.transactional_id.is_some();
    let request_transactional_id = request.transactional_id.clone();
    let verifier = request_transactional_id
        .clone()
        .filter(|_| config.transaction_partition_verification_enable)
        .map(|transactional_id| (Arc::clone(broker), transactional_id));
    let mut topic_names = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic) in request.topic_data.into_iter().enumerate() {
        let name = if version >= 13 {
            image.topic_by_id(topic.topic_id).map(|topic| topic.name.clone())
        } else {
            Some(topic.name.clone())
        };
        topic_names.push(name.clone());
        responses.push(TopicProduceResponse {
            name: if version >= 13 { String::new() } else { topic.name.clone() },
            topic_id: topic.topic_id,
            partition_responses: Vec::with_capacity(topic.partition_data.len()),
            ..TopicProduceResponse::default()
        });
        let unknown = if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };
        for partition in topic.partition_data {
            let target = if !ack_valid {
                Err(ErrorCode::InvalidRequiredAcks)
            } else if transactional_id_denied {
                Err(ErrorCode::TransactionalIdAuthorizationFailed)
            } else if name.as_deref().is_some_and(|name| !access.allows_topic(operation::WRITE, name)) {
                Err(ErrorCode::TopicAuthorizationFailed)
            } else if name
                .as_deref()
                .is_some_and(|name| !is_internal(name) && led_elsewhere(&image, name, partition.index, broker.node_id))
            {
                Err(ErrorCode::NotLeaderOrFollower)
            } else {
                match name.as_deref().and_then(|name| broker.replicas.get(name, partition.index)) {
                    None if name.as_deref().is_some_and(is_internal) => Err(ErrorCode::InvalidTopicException),
                    None => Err(unknown),
                    Some(hosted) if is_internal(&hosted.topic) => Err(ErrorCode::InvalidTopicException),
                    Some(hosted) => {
                        let min_insync_ok = acks != -1
                            || image
                                .topic(&hosted.topic)
                                .and_then(|topic| topic.partitions.get(&partition.index))
                                .is_none_or(|state| {
                                    let min_insync = image
                                        .topic_configs(&hosted.topic)
                                        .get("min.insync.replicas")
                                        .and_then(|value| value.parse::<usize>().ok())
                                        .unwrap_or(usize::try_from(config.min_insync_replicas).unwrap_or(1));
                                    state.isr.len() >= min_insync
                                });
                        if !min_insync_ok {
                            Err(ErrorCode::NotEnoughReplicas)
                        } else {
                            prepare_records(version, partition.records, config.message_max_bytes, transactional_id)
                                .map(|records| (hosted, records))
                        }
                    }
                }
            };
            work.push(Work { topic_index, partition_index: partition.index, target });
        }
    }

    if version >= IMPLICIT_ADD_SINCE_VERSION && broker.txns.transaction_version(broker) >= 2 {
        if let Some(transactional_id) = &request_transactional_id {
            add_partitions_implicitly(broker, transactional_id, &mut work).await;
        }
    }
    let results = append_all(work, verifier);
    let mut any_error = false;
    let mut syncs = Vec::new();
    for (topic_index, response, sync) in results {
        any_error |= response.error_code != ErrorCode::None.code();
        if let Some(topic) = responses.get_mut(topic_index) {
            if let Some(sync) = sync {
                syncs.push((topic_index, topic.partition_responses.len(), sync));
            }
            topic.partition_responses.push(response);
        }
    }
    let mut response = ProduceResponse { responses, throttle_time_ms: 0, ..ProduceResponse::default() };
    if version >= CURRENT_LEADER_SINCE_VERSION {
        add_current_leaders(&mut response, &image, &topic_names, context.listener_name());
    }
    if acks == 0 {
        if !syncs.is_empty() {
            // Nothing is acknowledged; the sync the flush policy wants still happens.
            drop(tokio::spawn(sync_then_answer(response, syncs)));
        }
        return if any_error {
            Outcome::Close("a produce request with acks=0 failed".to_owned())
        } else {
            Outcome::NoResponse
        };
    }
    if syncs.is_empty() {
        return Outcome::Respond(ResponseBody::Produce(response));
    }
    Outcome::Deferred(tokio::spawn(sync_then_answer(response, syncs)))
}

/// The flush policy wants these appends synced before they are acknowledged: sync
/// each partition (group commit: concurrent requests share syncs), make the synced
/// data visible to waiting fetches, then answer. A failed sync answers
/// KAFKA_STORAGE_ERROR for that partition (its log is then offline).
async fn sync_then_answer(mut response: ProduceResponse, syncs: Vec<(usize, usize, (Arc<Partition>, i64))>) -> Outcome {
    let synced = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        syncs
            .into_iter()
            .map(|(topic_index, position, (partition, end_offset))| {
                let result = partition.log.flush_through(end_offset, now);
                partition.waiters.wake_all();
                (topic_index, position, partition, result)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(synced) = synced else {
        return Outcome::Close("the produce sync task failed".to_owned());
    };
    for (topic_index, position, partition, result) in synced {
        let Err(error) = result else { continue };
        tracing::error!("{}-{}: {error}", partition.topic, partition.index);
        let answer =
            response.responses.get_mut(topic_index).and_then(|topic| topic.partition_responses.get_mut(position));
        if let Some(answer) = answer {
            *answer = error_response(answer.index, error.error_code(), Some(error.to_string()));
        }
    }
    Outcome::Respond(ResponseBody::Produce(response))
}

/// KIP-890 part 2: with transaction version 2, a Produce v12+ adds its partitions
/// to the producer's transaction itself (there is no AddPartitionsToTxn before it).
/// A partition the coordinator refuses gets the produce error Kafka maps its answer
/// to, and is not appended.
async fn add_partitions_implicitly(broker: &Arc<Broker>, transactional_id: &str, work: &mut [Work]) {
    let mut producer = None;
    let mut partitions = Vec::new();
    for item in work.iter() {
        let Ok((partition, records)) = &item.target else { continue };
        let Ok(header) = RecordBatchHeader::parse(records) else { continue };
        if header.is_transactional() && header.producer_id >= 0 {
            producer.get_or_insert((header.producer_id, header.producer_epoch));
            partitions.push((partition.topic.to_string(), partition.index));
        }
    }
    let Some((producer_id, producer_epoch)) = producer else { return };
    let added =
        broker.txns.add_partitions_implicitly(broker, transactional_id, producer_id, producer_epoch, &partitions).await;
    for item in work.iter_mut() {
        let Ok((partition, _)) = &item.target else { continue };
        let key = (partition.topic.to_string(), partition.index);
        if !partitions.contains(&key) {
            continue;
        }
        let code = match &added {
            Ok(errors) => errors.get(&key).copied().unwrap_or(ErrorCode::None),
            Err(code) => *code,
        };
        let code = crate::txn_coordinator::produce_error(code);
        if code != ErrorCode::None {
            item.target = Err(code);
        }
    }
}

/// Whether `topic` is one of the coordinators' internal topics, which only the
/// broker itself writes.
fn is_internal(topic: &str) -> bool {
    topic == crate::coordinator::OFFSETS_TOPIC || topic == crate::txn_coordinator::TXN_TOPIC
}

/// The record set to append: v2 batches as sent (in a buffer the storage
/// crate may stamp), or legacy sets converted. A transactional batch in a request
/// without a transactional id is TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka
/// answers it (Kafka fails the whole request; here the partitions that carry one).
fn prepare_records(
    version: i16,
    records: Option<Bytes>,
    message_max_bytes: i32,
    transactional_id: bool,
) -> Result<BytesMut, ErrorCode> {
    let records = records.filter(|records| !records.is_empty()).ok_or(ErrorCode::InvalidRecord)?;
    let first_magic = records.get(16).copied().map(|magic| magic as i8).ok_or(ErrorCode::CorruptMessage)?;
    if version >= 3 {
        // v3+ requires the v2 format for every batch, so transactional and
        // idempotent metadata always travel in the header.
        for entry in split_record_set(records.clone()) {
            let entry = entry.map_err(|_| ErrorCode::CorruptMessage)?;
            let header = RecordBatchHeader::parse(&entry).map_err(|_| ErrorCode::InvalidRecord)?;
            if header.magic != MAGIC_V2 {
                return Err(ErrorCode::InvalidRecord);
            }
            if header.is_transactional() && !transactional_id {
                return Err(ErrorCode::TransactionalIdAuthorizationFailed);
            }
        }
        return Ok(into_mut(records));
    }
    if first_magic == MAGIC_V2 {
        return Ok(into_mut(records));
    }
    // Converting may inflate compressed sets; bound it by the largest batch a topic
    // may accept, generously.
    let output_bytes_max = usize::try_from(message_max_bytes).unwrap_or(1 << 20).saturating_mul(4).max(1 << 20);
    upconvert_message_set(&records, output_bytes_max)
}

/// The record set as a buffer storage may stamp: the request's own memory when
/// nothing else shares it (a large frame has a buffer of its own, and a request
/// for one partition holds it alone), else a copy.
fn into_mut(records: Bytes) -> BytesMut {
    records.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]))
}

/// An append's answer, and the partition and offset to sync through before sending
/// it when the flush policy asks for a sync.
type Appended = (usize, PartitionProduceResponse, Option<(Arc<Partition>, i64)>);

/// Appends each partition's batches and wakes the fetches waiting on it.
///
/// This runs on the request's own thread: an append is a CRC pass and a write
/// into the page cache, and handing it to the blocking pool cost more than the
/// append itself (two thread switches per request; measured 86 → 245 MB/s for
/// 1 KiB records, acks=1, one partition, broker pinned to one core). What can
/// wait on the disk, the fdatasync a flush policy asks for, is deferred to
/// `sync_then_answer` on the blocking pool.
fn append_all(work: Vec<Work>, verifier: Option<(Arc<Broker>, String)>) -> Vec<Appended> {
    let now = now_ms();
    work.into_iter()
        .map(|item| {
            let mut sync = None;
            let response = match item.target {
                Err(error) => error_response(item.partition_index, error, None),
                Ok((partition, records)) => {
                    let verify = |producer_id: i64, producer_epoch: i16| match &verifier {
                        Some((broker, transactional_id)) => broker.txns.verify_produce(
                            broker,
                            transactional_id,
                            producer_id,
                            producer_epoch,
                            &partition.topic,
                            partition.index,
                        ),
                        None => Ok(()),
                    };
                    let appended = partition.log.append_as_leader_verified(
                        records,
                        partition.leader_epoch(),
                        now,
                        verifier.as_ref().map(|_| &verify as gregor_storage::TxnVerifier<'_>),
                        true,
                    );
                    match appended {
                        Ok(info) => {
                            match info.sync_through {
                                Some(end_offset) => sync = Some((Arc::clone(&partition), end_offset)),
                                None => partition.waiters.wake_all(),
                            }
                            PartitionProduceResponse {
                                index: item.partition_index,
                                error_code: ErrorCode::None.code(),
                                base_offset: info.base_offset,
                                log_append_time_ms: info.log_append_time_ms,
                                log_start_offset: info.log_start_offset,
                                ..PartitionProduceResponse::default()
                            }
                        }
                        Err(error) => append_error_response(item.partition_index, &partition, &error),
                    }
                }
            };
            (item.topic_index, response, sync)
        })
        .collect::<Vec<_>>()
}

fn append_error_response(index: i32, partition: &Partition, error: &AppendError) -> PartitionProduceResponse {
    let code = error.error_code();
    // A full disk is logged once by the log, not on every refused produce.
    if code == ErrorCode::KafkaStorageError && !error.is_no_space() {
        tracing::error!("{}-{}: {error}", partition.topic, partition.index);
    }
    let mut response = error_response(index, code, Some(error.to_string()));
    response.log_start_offset = partition.log.log_start_offset();
    response.record_errors = error
        .record_errors()
        .iter()
        .map(|(batch_index, message)| BatchIndexAndErrorMessage {
            batch_index: *batch_index,
            batch_index_error_message: message.clone(),
            ..BatchIndexAndErrorMessage::default()
        })
        .collect();
    response
}

/// Names the current leader of every NOT_LEADER_OR_FOLLOWER partition, and the
/// leaders' endpoints on `listener_name`, as Kafka's KIP-951 answer does.
fn add_current_leaders(
    response: &mut ProduceResponse,
    image: &gregor_metadata::MetadataImage,
    topic_names: &[Option<String>],
    listener_name: &str,
) {
    for (topic, name) in response.responses.iter_mut().zip(topic_names) {
        let Some(name) = name else { continue };
        for partition in &mut topic.partition_responses {
            if partition.error_code != ErrorCode::NotLeaderOrFollower.code() {
                continue;
            }
            let Some(leader) = current_leader(image, name, partition.index, listener_name) else { continue };
            partition.current_leader = LeaderIdAndEpoch {
                leader_id: leader.leader_id,
                leader_epoch: leader.leader_epoch,
                ..LeaderIdAndEpoch::default()
            };
            let Some(node) = leader.node else { continue };
            if !response.node_endpoints.iter().any(|endpoint| endpoint.node_id == node.id) {
                response.node_endpoints.push(NodeEndpoint {
                    node_id: node.id,
                    host: node.host,
                    port: node.port,
                    rack: node.rack,
                    ..NodeEndpoint::default()
                });
            }
        }
    }
}

fn error_response(index: i32, error: ErrorCode, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: error.code(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: message,
        ..PartitionProduceResponse::default()
    }
}

#[cfg(test)]
mod tests;
