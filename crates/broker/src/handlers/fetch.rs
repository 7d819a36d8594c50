//! Fetch (key 1), v4-v18, for consumers.
//!
//! Reads each partition from the batch that contains the fetch offset (whole
//! batches, stored bytes, never re-encoded), up to `partition_max_bytes` per
//! partition and `max_bytes` per response, except that the first partition with
//! data returns at least one batch even when it is larger. When fewer than
//! `min_bytes` are ready the request waits in the purgatory until an append to one
//! of its partitions wakes it or `max_wait_ms` runs out, then reads again.
//!
//! Isolation (v4+): read_uncommitted reads up to the high watermark;
//! read_committed up to the last stable offset (LSO) and gets, per partition, the
//! aborted transactions that overlap the batches returned (producer id and first
//! offset, from the segments' aborted-transaction indexes, Kafka's
//! collectAbortedTransactions bounded by the end of the last batch returned), an
//! empty list when nothing was returned, and null for read_uncommitted and for
//! partitions with an error, as Kafka answers. Only data below the LSO counts
//! toward a read_committed fetch's `min_bytes` (it is all that is read), and a
//! waiting read_committed fetch re-reads when the LSO moves: markers are written
//! through [`Partition::append_marker`], which wakes the partition's waiters.
//!
//! Per version: v4+ isolation level and last stable offset (reported whatever the
//! isolation level); v5+ log start offset; v7+ KIP-227 sessions (see
//! [`crate::fetch_session`]) and a top-level error; v9+ current leader epoch
//! checks (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH); v11+ preferred read replica
//! (-1: read from the leader); v12+ last-fetched-epoch divergence; v13+ topic ids
//! (UNKNOWN_TOPIC_ID).
//!
//! Consumers fetch from the leader: a partition another broker leads is
//! NOT_LEADER_OR_FOLLOWER. With that error or FENCED_LEADER_EPOCH, v12+ names the
//! partition's current leader and v16+ the leaders' endpoints on the request's
//! listener (KIP-951), so the client moves without waiting for a metadata refresh.
//!
//! With an authorizer, a partition of a topic the client may not READ is
//! TOPIC_AUTHORIZATION_FAILED (judged on every fetch of a session).
//!
//! The records are not read into memory on the way: the reads locate whole batches
//! as file regions through the indexes, and the connection sends them with
//! sendfile (see [`crate::zero_copy`]). [`handle`] (for tests and in-process
//! callers) returns them read into the response instead.

use crate::authorization::Access;
use crate::broker::Broker;
use crate::cluster_view::{current_leader, led_elsewhere};
use crate::fetch_session::{FetchSessionCache, SessionPartition, SessionPartitionKey, SessionRequest};
use crate::partitions::Partition;
use crate::purgatory::Waiter;
use crate::request_context::RequestContext;
use crate::time::now_ms;
use crate::zero_copy;
use bytes::Bytes;
use gregor_metadata::acl::operation;
use gregor_metadata::MetadataImage;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use gregor_storage::{AbortedTxn, FileRegion, Log, ReadError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

const READ_COMMITTED: i8 = 1;
/// The longest a fetch may wait, whatever it asks: a bound on parked requests.
const MAX_WAIT_MS_CAP: i32 = 5 * 60 * 1000;

/// One partition's read in one round.
#[derive(Debug, Clone)]
struct PartitionRead {
    error: ErrorCode,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    records: Bytes,
    /// The records as a range of a segment file, sent by the kernel (then `records`
    /// is empty); see [`crate::zero_copy`].
    region: Option<FileRegion>,
    diverging: Option<(i32, i64)>,
    leader_epoch: i32,
    /// read_committed reads only: the aborted transactions overlapping `records`.
    aborted: Option<Vec<AbortedTxn>>,
}

impl PartitionRead {
    fn records_bytes(&self) -> usize {
        self.records.len() + self.region.as_ref().map_or(0, FileRegion::len_bytes)
    }

    /// The end of what this isolation level may read, as of this read.
    fn fetchable_end(&self, isolation: i8) -> i64 {
        if isolation == READ_COMMITTED {
            self.last_stable_offset
        } else {
            self.high_watermark
        }
    }
}

/// The end of what `isolation` may read in `log` now: the LSO for
/// read_committed, the high watermark otherwise.
fn fetchable_end(log: &Log, isolation: i8) -> i64 {
    if isolation == READ_COMMITTED {
        log.last_stable_offset()
    } else {
        log.high_watermark()
    }
}

/// The response with every partition's records in it.
pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: FetchRequest,
) -> FetchResponse {
    handle_reads(broker, header, context, &broker.access(context), request, false).await.0
}

/// The response with placeholders for the records that the connection sends
/// from the segment files, and those files' regions in response order.
pub async fn handle_zero_copy(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: FetchRequest,
) -> (FetchResponse, Vec<FileRegion>) {
    handle_reads(broker, header, context, &broker.access(context), request, true).await
}

/// The first versions that name the current leader of a partition that moved, and
/// the leaders' endpoints (KIP-951).
const CURRENT_LEADER_SINCE_VERSION: i16 = 12;
const NODE_ENDPOINTS_SINCE_VERSION: i16 = 16;

async fn handle_reads(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    access: &Access,
    request: FetchRequest,
    zero_copy: bool,
) -> (FetchResponse, Vec<FileRegion>) {
    let version = header.request_api_version;
    let now = now_ms();
    let requested = requested_partitions(broker, version, &request);
    let sessions = &broker.fetch_sessions;
    let classified = if version >= 7 {
        SessionRequest::classify(request.session_id, request.session_epoch)
    } else {
        Ok(SessionRequest::Sessionless)
    };
    let (session_id, partitions, incremental) = match classified {
        Err(error) => return (top_level_error(error), Vec::new()),
        Ok(SessionRequest::Sessionless) => (0, requested, false),
        Ok(SessionRequest::Close { session_id }) => {
            sessions.close(session_id);
            (0, requested, false)
        }
        Ok(SessionRequest::Open { close }) => {
            if close != 0 {
                sessions.close(close);
            }
            let id = sessions.open(requested.clone(), now);
            (id, requested, false)
        }
        Ok(SessionRequest::Incremental { session_id, epoch }) => {
            let forgotten = forgotten_partitions(broker, version, &request);
            match sessions.update(session_id, epoch, requested, &forgotten, now) {
                Ok(all) => (session_id, all, true),
                Err(error) => return (top_level_error(error), Vec::new()),
            }
        }
    };

    // Every partition of the session is judged on every fetch, as the ACLs may change.
    let denied: Vec<bool> = if access.is_open() {
        Vec::new()
    } else {
        partitions.iter().map(|partition| !access.allows_topic(operation::READ, &partition.key.topic)).collect()
    };
    let image = broker.image();
    let not_leader: Vec<bool> = partitions
        .iter()
        .map(|partition| led_elsewhere(&image, &partition.key.topic, partition.key.partition, broker.node_id))
        .collect();
    let hosted: Vec<Option<Arc<Partition>>> = partitions
        .iter()
        .enumerate()
        .map(|(index, partition)| {
            if denied.get(index).copied().unwrap_or(false) || not_leader.get(index).copied().unwrap_or(false) {
                return None;
            }
            broker.replicas.get(&partition.key.topic, partition.key.partition)
        })
        .collect();
    let response_bytes_max = usize::try_from(request.max_bytes).ok().filter(|bytes| *bytes > 0).unwrap_or(usize::MAX);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let isolation = request.isolation_level;
    let deadline = Instant::now()
        + Duration::from_millis(u64::try_from(request.max_wait_ms.clamp(0, MAX_WAIT_MS_CAP)).unwrap_or(0));
    let unknown = if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };

    let limits = ReadLimits { response_bytes_max, min_bytes, isolation, unknown, zero_copy };
    let mut reads = read_until_ready(&partitions, &hosted, &limits, deadline).await;
    for (read, _) in reads.iter_mut().zip(&not_leader).filter(|(_, not_leader)| **not_leader) {
        read.error = ErrorCode::NotLeaderOrFollower;
    }
    for (read, _) in reads.iter_mut().zip(&denied).filter(|(_, denied)| **denied) {
        read.error = ErrorCode::TopicAuthorizationFailed;
    }
    let (mut response, regions) = build_response(version, session_id, incremental, &partitions, reads, sessions);
    if version >= CURRENT_LEADER_SINCE_VERSION {
        add_current_leaders(&mut response, version, &image, context.listener_name());
    }
    (response, regions)
}

/// Names the current leader of every partition that answers NOT_LEADER_OR_FOLLOWER
/// or FENCED_LEADER_EPOCH, and (v16+) the leaders' endpoints on `listener_name`, as
/// Kafka's KIP-951 answer does.
fn add_current_leaders(response: &mut FetchResponse, version: i16, image: &MetadataImage, listener_name: &str) {
    let moved = [ErrorCode::NotLeaderOrFollower.code(), ErrorCode::FencedLeaderEpoch.code()];
    for topic in &mut response.responses {
        let name = if version >= 13 {
            image.topic_by_id(topic.topic_id).map(|topic| topic.name.as_str())
        } else {
            Some(topic.topic.as_str())
        };
        let Some(name) = name else { continue };
        for partition in &mut topic.partitions {
            if !moved.contains(&partition.error_code) {
                continue;
            }
            let Some(leader) = current_leader(image, name, partition.partition_index, listener_name) else {
                continue;
            };
            partition.current_leader = LeaderIdAndEpoch {
                leader_id: leader.leader_id,
                leader_epoch: leader.leader_epoch,
                ..LeaderIdAndEpoch::default()
            };
            let Some(node) = leader.node.filter(|_| version >= NODE_ENDPOINTS_SINCE_VERSION) else { continue };
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

/// Reads every partition, and while fewer than `min_bytes` are ready (and no
/// partition failed), sleeps until an append or a marker to one of them wakes it
/// or `deadline` passes, then reads again (Kafka's DelayedFetch). Only what the
/// isolation level may read counts: for read_committed, the bytes below the LSO.
async fn read_until_ready(
    partitions: &[SessionPartition],
    hosted: &[Option<Arc<Partition>>],
    limits: &ReadLimits,
    deadline: Instant,
) -> Vec<PartitionRead> {
    let (min_bytes, isolation) = (limits.min_bytes, limits.isolation);
    let waiter: Waiter = Arc::new(Notify::new());
    loop {
        let reads = read_round(partitions, hosted, limits).await;
        let ready_bytes: usize = reads.iter().map(PartitionRead::records_bytes).sum();
        let any_error = reads.iter().any(|read| read.error != ErrorCode::None);
        if ready_bytes >= min_bytes.max(1) || any_error || Instant::now() >= deadline || partitions.is_empty() {
            return reads;
        }
        for partition in hosted.iter().flatten() {
            partition.waiters.register(&waiter);
        }
        // An append (or, for read_committed, a marker) between the read and the
        // registration would not wake us; look at the fetchable ends once more now
        // that we are registered.
        let moved = hosted.iter().zip(&reads).any(|(partition, read)| {
            partition.as_ref().is_some_and(|p| fetchable_end(&p.log, isolation) != read.fetchable_end(isolation))
        });
        if !moved {
            tokio::select! {
                _ = waiter.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        for partition in hosted.iter().flatten() {
            partition.waiters.forget(&waiter);
        }
    }
}

/// The partitions named in the request, keyed by name (v4-v12) or id (v13+), with
/// the topic's name filled in from the id when we know it.
fn requested_partitions(broker: &Broker, version: i16, request: &FetchRequest) -> Vec<SessionPartition> {
    // Ids resolve through the image: a topic with no replica here is still known.
    let image = broker.image();
    let mut partitions = Vec::new();
    for topic in &request.topics {
        let name = if version >= 13 {
            image.topic_by_id(topic.topic_id).map(|topic| topic.name.clone()).unwrap_or_default()
        } else {
            topic.topic.clone()
        };
        for partition in &topic.partitions {
            partitions.push(SessionPartition {
                key: SessionPartitionKey {
                    topic: name.clone(),
                    topic_id: if version >= 13 { topic.topic_id } else { Uuid::ZERO },
                    partition: partition.partition,
                },
                fetch_offset: partition.fetch_offset,
                partition_max_bytes: partition.partition_max_bytes,
                current_leader_epoch: partition.current_leader_epoch,
                last_fetched_epoch: partition.last_fetched_epoch,
                sent_high_watermark: -1,
                sent_last_stable_offset: -1,
                sent_log_start_offset: -1,
            });
        }
    }
    partitions
}

fn forgotten_partitions(broker: &Broker, version: i16, request: &FetchRequest) -> Vec<SessionPartitionKey> {
    let image = broker.image();
    let mut forgotten = Vec::new();
    for topic in &request.forgotten_topics_data {
        let name = if version >= 13 {
            image.topic_by_id(topic.topic_id).map(|topic| topic.name.clone()).unwrap_or_default()
        } else {
            topic.topic.clone()
        };
        for partition in &topic.partitions {
            forgotten.push(SessionPartitionKey {
                topic: name.clone(),
                topic_id: if version >= 13 { topic.topic_id } else { Uuid::ZERO },
                partition: *partition,
            });
        }
    }
    forgotten
}

/// What one fetch may read, and how.
#[derive(Debug, Clone, Copy)]
struct ReadLimits {
    response_bytes_max: usize,
    min_bytes: usize,
    isolation: i8,
    /// The error for a partition this broker does not host.
    unknown: ErrorCode,
    /// Records as file regions the connection sends (see [`crate::zero_copy`]).
    zero_copy: bool,
}

/// Reads every partition once, on a blocking thread.
async fn read_round(
    partitions: &[SessionPartition],
    hosted: &[Option<Arc<Partition>>],
    limits: &ReadLimits,
) -> Vec<PartitionRead> {
    let partitions = partitions.to_vec();
    let hosted = hosted.to_vec();
    let count = partitions.len();
    let limits = *limits;
    let read = move || {
        let mut remaining_bytes = limits.response_bytes_max;
        let mut nothing_read_yet = true;
        partitions
            .iter()
            .zip(&hosted)
            .map(|(wanted, partition)| {
                let Some(partition) = partition else { return failed(limits.unknown, -1) };
                let read = read_partition(wanted, partition, remaining_bytes, nothing_read_yet, &limits);
                if read.records_bytes() > 0 {
                    nothing_read_yet = false;
                    remaining_bytes = remaining_bytes.saturating_sub(read.records_bytes());
                }
                read
            })
            .collect::<Vec<_>>()
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(reads) => reads,
        Err(error) => {
            tracing::error!("fetch read task failed: {error}");
            vec![failed(ErrorCode::UnknownServerError, -1); count]
        }
    }
}

fn failed(error: ErrorCode, leader_epoch: i32) -> PartitionRead {
    PartitionRead {
        error,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Bytes::new(),
        region: None,
        diverging: None,
        leader_epoch,
        aborted: None,
    }
}

/// Reads one partition for one fetch: the leader epoch checks, the divergence
/// check, then whole batches below the high watermark (read_uncommitted) or the
/// LSO (read_committed, with the aborted transactions among them).
fn read_partition(
    wanted: &SessionPartition,
    partition: &Partition,
    remaining_bytes: usize,
    min_one_batch: bool,
    limits: &ReadLimits,
) -> PartitionRead {
    let isolation = limits.isolation;
    let log = &partition.log;
    let leader_epoch = partition.leader_epoch();
    if wanted.current_leader_epoch >= 0 {
        if wanted.current_leader_epoch < leader_epoch {
            return failed(ErrorCode::FencedLeaderEpoch, leader_epoch);
        }
        if wanted.current_leader_epoch > leader_epoch {
            return failed(ErrorCode::UnknownLeaderEpoch, leader_epoch);
        }
    }
    let high_watermark = log.high_watermark();
    let last_stable_offset = log.last_stable_offset();
    let log_start_offset = log.log_start_offset();
    let read_committed = isolation == READ_COMMITTED;
    let mut result = PartitionRead {
        error: ErrorCode::None,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        records: Bytes::new(),
        region: None,
        diverging: None,
        leader_epoch,
        aborted: None,
    };
    if wanted.last_fetched_epoch >= 0 {
        // A fetcher whose last batch came from an epoch that ended earlier than its
        // position has diverged; tell it where that epoch ended instead of data.
        if let Some((epoch, end_offset)) = log.end_offset_for_epoch(wanted.last_fetched_epoch) {
            if epoch != wanted.last_fetched_epoch || end_offset < wanted.fetch_offset {
                result.diverging = Some((epoch, end_offset));
                return result;
            }
        }
    }
    let partition_bytes_max = usize::try_from(wanted.partition_max_bytes).unwrap_or(0).min(remaining_bytes);
    let max_offset = if read_committed { last_stable_offset } else { high_watermark };
    read_region(wanted, log, partition_bytes_max, min_one_batch, max_offset, limits, &mut result);
    result
}

/// [`read_partition`]'s read: whole batches located as a file region, kept as one
/// when the limits ask for zero copy and the connection can send it from the file, else read into
/// memory. read_committed reads get the aborted transactions below the region's end.
fn read_region(
    wanted: &SessionPartition,
    log: &Log,
    partition_bytes_max: usize,
    min_one_batch: bool,
    max_offset: i64,
    limits: &ReadLimits,
    result: &mut PartitionRead,
) {
    let read_committed = limits.isolation == READ_COMMITTED;
    match log.read_region(wanted.fetch_offset, partition_bytes_max, min_one_batch, max_offset) {
        Ok(read) => {
            if read_committed {
                result.aborted = Some(match read.region {
                    Some(_) => log.aborted_transactions(wanted.fetch_offset, read.next_offset),
                    None => Vec::new(),
                });
            }
            result.high_watermark = read.high_watermark;
            result.log_start_offset = read.log_start_offset;
            result.last_stable_offset = read.last_stable_offset;
            match read.region {
                Some(region) if limits.zero_copy && zero_copy::sendable(&region) => result.region = Some(region),
                Some(region) => match region.read() {
                    Ok(records) => result.records = records,
                    Err(error) => {
                        tracing::error!(partition = %wanted.key.partition, "fetch read failed: {error}");
                        result.error = ErrorCode::KafkaStorageError;
                    }
                },
                None => {}
            }
        }
        Err(error) => result.error = read_error_code(&error),
    }
}

fn read_error_code(error: &ReadError) -> ErrorCode {
    error.error_code()
}

fn top_level_error(error: ErrorCode) -> FetchResponse {
    FetchResponse { error_code: error.code(), session_id: 0, ..FetchResponse::default() }
}

fn build_response(
    version: i16,
    session_id: i32,
    incremental: bool,
    partitions: &[SessionPartition],
    reads: Vec<PartitionRead>,
    sessions: &FetchSessionCache,
) -> (FetchResponse, Vec<FileRegion>) {
    let mut regions = Vec::new();
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut sent = Vec::new();
    let mut returned_records = Vec::new();
    for (wanted, read) in partitions.iter().zip(reads) {
        let changed = read.error != ErrorCode::None
            || read.records_bytes() > 0
            || read.diverging.is_some()
            || read.high_watermark != wanted.sent_high_watermark
            || read.last_stable_offset != wanted.sent_last_stable_offset
            || read.log_start_offset != wanted.sent_log_start_offset;
        if incremental && !changed {
            continue;
        }
        if read.records_bytes() > 0 {
            returned_records.push(wanted.key.clone());
        }
        let records = match read.region {
            Some(region) => match zero_copy::placeholder(&region) {
                Some(placeholder) => {
                    regions.push(region);
                    placeholder
                }
                // Not reached: `read_region` keeps only regions that have one.
                None => region.read().unwrap_or_else(|error| {
                    tracing::error!(partition = %wanted.key.partition, "fetch read failed: {error}");
                    Bytes::new()
                }),
            },
            None => read.records,
        };
        sent.push(SessionPartition {
            sent_high_watermark: read.high_watermark,
            sent_last_stable_offset: read.last_stable_offset,
            sent_log_start_offset: read.log_start_offset,
            ..wanted.clone()
        });
        let leader_changed = matches!(read.error, ErrorCode::FencedLeaderEpoch | ErrorCode::NotLeaderOrFollower);
        let data = PartitionData {
            partition_index: wanted.key.partition,
            error_code: read.error.code(),
            high_watermark: read.high_watermark,
            last_stable_offset: read.last_stable_offset,
            log_start_offset: read.log_start_offset,
            diverging_epoch: match read.diverging {
                Some((epoch, end_offset)) => EpochEndOffset { epoch, end_offset, ..EpochEndOffset::default() },
                None => EpochEndOffset::default(),
            },
            current_leader: if leader_changed && version >= 12 {
                LeaderIdAndEpoch { leader_id: -1, leader_epoch: read.leader_epoch, ..LeaderIdAndEpoch::default() }
            } else {
                LeaderIdAndEpoch::default()
            },
            aborted_transactions: read.aborted.map(|aborted| {
                aborted
                    .into_iter()
                    .map(|txn| AbortedTransaction {
                        producer_id: txn.producer_id,
                        first_offset: txn.first_offset,
                        ..AbortedTransaction::default()
                    })
                    .collect()
            }),
            preferred_read_replica: -1,
            records: Some(records),
            ..PartitionData::default()
        };
        let same_topic = responses.last().is_some_and(|last| {
            if version >= 13 {
                last.topic_id == wanted.key.topic_id
            } else {
                last.topic == wanted.key.topic
            }
        });
        if !same_topic {
            responses.push(FetchableTopicResponse {
                topic: if version >= 13 { String::new() } else { wanted.key.topic.clone() },
                topic_id: wanted.key.topic_id,
                partitions: Vec::new(),
                ..FetchableTopicResponse::default()
            });
        }
        if let Some(topic) = responses.last_mut() {
            topic.partitions.push(data);
        }
    }
    if session_id != 0 {
        sessions.record_sent(session_id, &sent, &returned_records);
    }
    let response = FetchResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        session_id,
        responses,
        ..FetchResponse::default()
    };
    (response, regions)
}

#[cfg(test)]
mod tests;
