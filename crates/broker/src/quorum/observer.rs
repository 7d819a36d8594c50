//! A broker-only node's metadata log (`process.roles=broker`): an observer of the
//! quorum, as KRaft's brokers are. It never decides: it fetches the committed
//! entries (or, when it is behind the trimmed log, the snapshot) from the
//! controllers and hands them to the same loader the voters use. It keeps no
//! copy on disk; after a restart it fetches the snapshot and the log again.

use super::MetadataLog;
use crate::broker::Broker;
use crate::controller::{AppendFailure, Leadership};
use crate::error::BrokerError;
use gregor_config::QuorumVoter;
use gregor_metadata::{decode_batch, MetadataRecord};
use gregor_protocol::records::RecordBatch;
use gregor_quorum::wire::{decode_metadata_fetch_answer, encode_metadata_fetch, MetadataFetch, MetadataFetchAnswer};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How often an observer asks when it is caught up (KRaft brokers long-poll;
/// this bounds the delay the same way).
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Bytes of one answer read at most: the controller caps what it sends.
const ANSWER_BYTES_MAX: usize = 1024 * 1024 * 1024;

pub struct ObserverMetadataLog {
    node_id: i32,
    cluster_id: String,
    voters: Vec<QuorumVoter>,
    /// The leader the last answer named (-1: none known).
    leader: AtomicI32,
    applied_index: AtomicU64,
}

impl ObserverMetadataLog {
    pub fn new(config: &gregor_config::BrokerConfig, cluster_id: &str) -> Self {
        ObserverMetadataLog {
            node_id: config.node_id,
            cluster_id: cluster_id.to_owned(),
            voters: config.controller_quorum_voters.clone(),
            leader: AtomicI32::new(-1),
            applied_index: AtomicU64::new(0),
        }
    }

    /// Fetches and applies committed metadata until shutdown.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        let mut next_voter = 0usize;
        let mut connection: Option<(i32, TcpStream)> = None;
        let mut correlation_id = 0i32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let leader = self.leader.load(Ordering::Acquire);
            let target = if leader >= 0 && self.voters.iter().any(|voter| voter.id == leader) {
                leader
            } else {
                next_voter = (next_voter + 1) % self.voters.len().max(1);
                self.voters.get(next_voter).map_or(-1, |voter| voter.id)
            };
            if connection.as_ref().is_none_or(|(id, _)| *id != target) {
                let Some(voter) = self.voters.iter().find(|voter| voter.id == target) else { return };
                match TcpStream::connect((voter.host.as_str(), voter.port)).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        connection = Some((target, stream));
                    }
                    Err(error) => {
                        tracing::debug!("cannot reach controller {target}: {error}");
                        self.leader.store(-1, Ordering::Release);
                        if pause(&mut shutdown, RETRY_BACKOFF).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let Some((_, stream)) = connection.as_mut() else { continue };
            correlation_id = correlation_id.wrapping_add(1);
            let fetch = MetadataFetch {
                cluster_id: self.cluster_id.clone(),
                node_id: self.node_id,
                after_index: self.applied_index.load(Ordering::Acquire),
            };
            let answer = match exchange(stream, &fetch, correlation_id).await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::debug!("metadata fetch from controller {target} failed: {error}");
                    connection = None;
                    self.leader.store(-1, Ordering::Release);
                    if pause(&mut shutdown, RETRY_BACKOFF).await {
                        return;
                    }
                    continue;
                }
            };
            if answer.error_code != 0 {
                tracing::error!(
                    "controller {target} refused this node's metadata fetch (error {}): is it formatted with this cluster's id?",
                    answer.error_code
                );
                connection = None;
                if pause(&mut shutdown, RETRY_BACKOFF).await {
                    return;
                }
                continue;
            }
            self.leader.store(answer.leader_id, Ordering::Release);
            let caught_up = answer.snapshot.is_none() && answer.entries.is_empty();
            let this = Arc::clone(&self);
            let broker_for_apply = Arc::clone(&broker);
            let applied = tokio::task::spawn_blocking(move || this.apply(&broker_for_apply, answer)).await;
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!("cannot apply fetched metadata: {error}"),
                Err(error) => tracing::error!("metadata apply task failed: {error}"),
            }
            if caught_up && pause(&mut shutdown, POLL_INTERVAL).await {
                return;
            }
        }
    }

    fn apply(&self, broker: &Broker, answer: MetadataFetchAnswer) -> Result<(), BrokerError> {
        if let Some((index, data)) = answer.snapshot {
            let records = gregor_metadata::decode_snapshot(data)?;
            broker.load_snapshot(i64::try_from(index).unwrap_or(i64::MAX), records)?;
            self.applied_index.store(index, Ordering::Release);
        }
        for (index, data) in answer.entries {
            if index <= self.applied_index.load(Ordering::Acquire) {
                continue;
            }
            if !data.is_empty() {
                let batch =
                    RecordBatch::new(data).map_err(|error| BrokerError::Quorum(format!("entry {index}: {error}")))?;
                let records: Vec<MetadataRecord> = decode_batch(&batch)?;
                broker.apply_committed(i64::try_from(index).unwrap_or(i64::MAX), &records)?;
            }
            self.applied_index.store(index, Ordering::Release);
        }
        Ok(())
    }
}

/// Sleeps; true when shutdown came first.
async fn pause(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = shutdown.changed() => true,
    }
}

async fn exchange(
    stream: &mut TcpStream,
    fetch: &MetadataFetch,
    correlation_id: i32,
) -> Result<MetadataFetchAnswer, String> {
    let request = encode_metadata_fetch(fetch, correlation_id).map_err(|error| error.to_string())?;
    stream.write_all(&request).await.map_err(|error| error.to_string())?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.map_err(|error| error.to_string())?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "negative answer size".to_string())?;
    if size > ANSWER_BYTES_MAX {
        return Err(format!("a {size}-byte answer"));
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).await.map_err(|error| error.to_string())?;
    decode_metadata_fetch_answer(bytes::Bytes::from(body)).map_err(|error| error.to_string())
}

impl MetadataLog for ObserverMetadataLog {
    fn append(&self, _broker: &Broker, _records: &[MetadataRecord]) -> Result<(), AppendFailure> {
        let leader = Some(self.leader.load(Ordering::Acquire)).filter(|id| *id >= 0);
        Err(AppendFailure { error: BrokerError::NotController { leader }, maybe_written: false })
    }

    fn leadership(&self) -> Leadership {
        let leader = Some(self.leader.load(Ordering::Acquire)).filter(|id| *id >= 0);
        Leadership { active_controller: leader, may_decide: false }
    }
}
