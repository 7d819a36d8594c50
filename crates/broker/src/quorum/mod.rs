//! The replicated metadata log: a [`gregor_quorum::QuorumNode`] driven by one
//! thread of its own ("gregor-quorum") with the real clock, disk and network.
//! The thread owns the node; everything else talks to it through a bounded
//! channel of [`Command`]s and reads the [`QuorumView`] it publishes. Committed
//! entries are handed to the broker's metadata loader on that thread, in order,
//! so the image follows the log exactly; a proposal is answered once its entry
//! has been applied, so a decision's caller sees its own effect.

mod disk;
mod observer;
mod transport;

use crate::controller::MetadataLog;
pub use disk::SegmentDisk;
pub use observer::ObserverMetadataLog;
use transport::PeerLinks;

use crate::broker::Broker;
use crate::error::BrokerError;
use bytes::Bytes;
use gregor_config::{BrokerConfig, QuorumVoter};
use gregor_metadata::{decode_batch, MetadataRecord};
use gregor_protocol::records::RecordBatch;
use gregor_quorum::wire::{decode_frame, encode_refusal, RaftFrame};
use gregor_quorum::{Applied, Message, MessageType, QuorumNode, QuorumSettings, VoterProgress};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Commands queued for the driver; a full queue drops peer messages (Raft resends).
const COMMANDS_QUEUED_MAX: usize = 4096;
const ELECTION_TICKS: usize = 10;
/// raft-rs randomises the election timeout over [timeout, 1.3 x timeout): a new
/// controller decides within the timeout and a second after the old one stops.
const ELECTION_TICKS_MAX: usize = ELECTION_TICKS + 3;
const MESSAGE_BYTES_MAX: u64 = 1024 * 1024;
const INFLIGHT_MESSAGES_MAX: usize = 256;

pub enum Command {
    Step(Vec<Message>),
    Propose {
        data: Bytes,
        reply: SyncSender<Result<(), BrokerError>>,
    },
    Unreachable(u64),
    /// An observer's fetch: committed entries after an index.
    Read {
        after_index: u64,
        reply: tokio::sync::oneshot::Sender<gregor_quorum::wire::MetadataFetchAnswer>,
    },
    Shutdown,
}

/// What the driver last published about the quorum.
#[derive(Debug, Clone, Default)]
pub struct QuorumView {
    pub leader_id: Option<i32>,
    pub term: u64,
    /// This node leads and has applied every earlier commit: it may decide.
    pub may_decide: bool,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub voted_for: Option<i32>,
    pub voters: Vec<VoterProgress>,
    /// When the driver heard from each voter last (leader's view), for DescribeQuorum.
    pub last_contact_ms: HashMap<u64, i64>,
    /// The driver stopped (a disk error): this node takes no part any more.
    pub failed: Option<String>,
}

pub struct RaftMetadataLog {
    node_id: i32,
    cluster_id: String,
    pub voters: Vec<QuorumVoter>,
    commands: SyncSender<Command>,
    receiver: Mutex<Option<Receiver<Command>>>,
    view: Arc<RwLock<QuorumView>>,
    request_timeout: Duration,
}

impl RaftMetadataLog {
    pub fn new(config: &BrokerConfig, cluster_id: &str) -> Self {
        let (commands, receiver) = std::sync::mpsc::sync_channel(COMMANDS_QUEUED_MAX);
        RaftMetadataLog {
            node_id: config.node_id,
            cluster_id: cluster_id.to_owned(),
            voters: config.controller_quorum_voters.clone(),
            commands,
            receiver: Mutex::new(Some(receiver)),
            view: Arc::new(RwLock::new(QuorumView::default())),
            request_timeout: Duration::from_millis(
                u64::try_from(config.controller_quorum_request_timeout_ms.max(1)).unwrap_or(2000) * 15,
            ),
        }
    }

    pub fn view(&self) -> QuorumView {
        match self.view.read() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts the driver thread and the links to the other voters. Returns once
    /// the state on disk is loaded (snapshot and committed entries applied).
    pub fn start(
        &self,
        broker: &Arc<Broker>,
        disk: SegmentDisk,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), BrokerError> {
        let receiver = match self.receiver.lock() {
            Ok(mut receiver) => receiver.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
        .ok_or_else(|| BrokerError::Quorum("the quorum was started twice".into()))?;
        let config = broker.config();
        let tick = Duration::from_millis(
            u64::try_from(config.controller_quorum_election_timeout_ms / ELECTION_TICKS as i32).unwrap_or(100).max(5),
        );
        let node_id =
            u64::try_from(self.node_id).map_err(|_| BrokerError::Quorum("node.id must not be negative".into()))?;
        let settings = QuorumSettings {
            node_id,
            voters: self.voters.iter().filter_map(|voter| u64::try_from(voter.id).ok()).collect(),
            election_ticks_min: ELECTION_TICKS,
            election_ticks_max: ELECTION_TICKS_MAX,
            heartbeat_ticks: 1,
            message_bytes_max: MESSAGE_BYTES_MAX,
            inflight_messages_max: INFLIGHT_MESSAGES_MAX,
            incarnation: u64::try_from(broker.broker_epoch).unwrap_or(0),
        };
        let (node, start) =
            QuorumNode::open(&settings, disk).map_err(|error| BrokerError::Quorum(error.to_string()))?;
        let links = PeerLinks::start(self.node_id, &self.cluster_id, &self.voters, self.commands.clone(), shutdown);
        let mut driver = Driver {
            node,
            links,
            loader: Arc::downgrade(broker),
            view: Arc::clone(&self.view),
            pending: HashMap::new(),
            single_voter: self.voters.len() == 1,
            snapshot_bytes_max: snapshot_bytes_max(&config),
            fresh_first_voter: false,
        };
        driver.fresh_first_voter = driver.node.term() == 0
            && driver.node.last_index() == 0
            && self.voters.iter().map(|voter| voter.id).min() == Some(self.node_id);
        if let Some(Applied::Snapshot { index, data, .. }) = start {
            driver.load_snapshot(index, data)?;
        }
        // Entries committed before the stop are applied before the node serves.
        driver.step_once()?;
        driver.publish_view();
        // Applying committed records reaches code that spawns tasks (the
        // coordinators loading partitions): the thread runs inside the runtime.
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| BrokerError::Quorum(format!("the quorum needs the async runtime: {error}")))?;
        std::thread::Builder::new()
            .name("gregor-quorum".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                driver.run(receiver, tick)
            })
            .map_err(|error| BrokerError::Quorum(format!("cannot start the quorum thread: {error}")))?;
        Ok(())
    }

    /// Hands a frame from the controller listener to the driver. Returns a refusal
    /// to send back when the frame is from another cluster.
    pub fn receive(&self, frame: Bytes) -> Result<(), Bytes> {
        let (correlation_id, RaftFrame { cluster_id, from_node, messages }) = match decode_frame(frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!("dropping a malformed Raft frame: {error}");
                return Ok(());
            }
        };
        if cluster_id != self.cluster_id {
            let message = format!(
                "node {from_node} belongs to cluster {cluster_id}, node {} to cluster {}: every node of a cluster must be formatted with the same cluster id (gregor storage format --cluster-id, or CLUSTER_ID)",
                self.node_id, self.cluster_id
            );
            tracing::error!("refusing Raft messages: {message}");
            return Err(encode_refusal(
                correlation_id,
                gregor_protocol::ErrorCode::InconsistentClusterId.code(),
                &message,
            )
            .unwrap_or_default());
        }
        if !self.voters.iter().any(|voter| voter.id == from_node) {
            let voters: Vec<String> =
                self.voters.iter().map(|voter| format!("{}@{}:{}", voter.id, voter.host, voter.port)).collect();
            let message = format!(
                "node {from_node} is not a voter in node {}'s controller.quorum.voters ({}): every controller must list the same voters",
                self.node_id,
                voters.join(",")
            );
            tracing::error!("refusing Raft messages: {message}");
            return Err(encode_refusal(
                correlation_id,
                gregor_protocol::ErrorCode::InconsistentVoterSet.code(),
                &message,
            )
            .unwrap_or_default());
        }
        match self.commands.try_send(Command::Step(messages)) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Ok(()),
        }
    }

    /// Proposes one decision's records and waits until they are committed and
    /// applied. Blocking: call from a blocking thread.
    pub fn append_blocking(&self, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        let view = self.view();
        if !view.may_decide {
            return Err(BrokerError::NotController { leader: view.leader_id });
        }
        let data = gregor_metadata::encode_batch(records, crate::time::now_ms())?.freeze();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.commands
            .send(Command::Propose { data, reply })
            .map_err(|_| BrokerError::Quorum("the quorum thread stopped".into()))?;
        match answer.recv_timeout(self.request_timeout) {
            Ok(result) => result,
            Err(_) => Err(BrokerError::Quorum("the metadata quorum did not commit the change in time".into())),
        }
    }

    /// Answers an observer's metadata fetch (a frame without its size prefix);
    /// returns the answer frame with its size prefix.
    pub async fn serve_fetch(&self, frame: Bytes) -> Result<Bytes, BrokerError> {
        use gregor_quorum::wire::{decode_metadata_fetch, encode_metadata_fetch_answer, MetadataFetchAnswer};
        let malformed = |error: gregor_quorum::QuorumError| BrokerError::Quorum(error.to_string());
        let (correlation_id, fetch) = decode_metadata_fetch(frame).map_err(malformed)?;
        if fetch.cluster_id != self.cluster_id {
            tracing::error!(
                "refusing the metadata fetch of node {}: it belongs to cluster {}, this node to {}",
                fetch.node_id,
                fetch.cluster_id,
                self.cluster_id
            );
            let refusal = MetadataFetchAnswer {
                error_code: gregor_protocol::ErrorCode::InconsistentClusterId.code(),
                leader_id: -1,
                ..MetadataFetchAnswer::default()
            };
            return encode_metadata_fetch_answer(&refusal, correlation_id).map_err(malformed);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands
            .try_send(Command::Read { after_index: fetch.after_index, reply })
            .map_err(|_| BrokerError::Quorum("the quorum thread is busy or stopped".into()))?;
        let answer = answer.await.map_err(|_| BrokerError::Quorum("the quorum thread stopped".into()))?;
        encode_metadata_fetch_answer(&answer, correlation_id).map_err(malformed)
    }

    pub fn shutdown(&self) {
        let _ = self.commands.try_send(Command::Shutdown);
    }
}

struct Driver {
    node: QuorumNode<SegmentDisk>,
    links: PeerLinks,
    loader: Weak<Broker>,
    view: Arc<RwLock<QuorumView>>,
    pending: HashMap<u64, (u64, SyncSender<Result<(), BrokerError>>)>,
    single_voter: bool,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    snapshot_bytes_max: u64,
    /// A new quorum (term 0, nothing in the log) and this node is its lowest voter.
    fresh_first_voter: bool,
}

impl Driver {
    fn run(mut self, commands: Receiver<Command>, tick: Duration) {
        let mut next_tick = Instant::now() + tick;
        // A quorum of one need not wait an election timeout, nor a new cluster: its
        // lowest voter stands at once (an early election is always safe in Raft;
        // it only spares the first election timeout).
        if self.single_voter || self.fresh_first_voter {
            let _ = self.node.campaign();
        }
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match commands.recv_timeout(wait) {
                Ok(Command::Step(messages)) => {
                    for message in messages {
                        if let Err(error) = self.node.step(message) {
                            tracing::debug!("Raft message refused: {error}");
                        }
                    }
                }
                Ok(Command::Propose { data, reply }) => match self.node.propose(data) {
                    Ok(id) => {
                        self.pending.insert(id, (self.node.term(), reply));
                    }
                    Err(error) => {
                        let leader = self.node.leader_id().and_then(|id| i32::try_from(id).ok());
                        tracing::debug!("proposal refused: {error}");
                        let _ = reply.send(Err(BrokerError::NotController { leader }));
                    }
                },
                Ok(Command::Unreachable(peer)) => self.node.report_unreachable(peer),
                Ok(Command::Read { after_index, reply }) => {
                    let (snapshot, entries) =
                        self.node.committed_after(after_index, gregor_quorum::wire::METADATA_FETCH_BYTES_MAX);
                    let answer = gregor_quorum::wire::MetadataFetchAnswer {
                        error_code: 0,
                        leader_id: self.node.leader_id().and_then(|id| i32::try_from(id).ok()).unwrap_or(-1),
                        commit_index: self.node.commit_index(),
                        snapshot,
                        entries,
                    };
                    let _ = reply.send(answer);
                }
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
                self.node.tick();
                next_tick += tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + tick;
                }
            }
            if let Err(error) = self.step_once() {
                tracing::error!("the metadata quorum stopped on this node: {error}");
                self.fail_pending();
                if let Ok(mut view) = self.view.write() {
                    view.failed = Some(error.to_string());
                    view.may_decide = false;
                }
                return;
            }
            if !self.node.is_leader() && !self.pending.is_empty() {
                self.fail_pending();
            }
            if self.node.entry_bytes_since_snapshot() > self.snapshot_bytes_max {
                if let Err(error) = self.take_snapshot() {
                    tracing::warn!("cannot take a metadata snapshot: {error}");
                }
            }
            self.publish_view();
        }
    }

    fn fail_pending(&mut self) {
        let leader = self.node.leader_id().and_then(|id| i32::try_from(id).ok());
        for (_, (_, reply)) in self.pending.drain() {
            let _ = reply.send(Err(BrokerError::NotController { leader }));
        }
    }

    fn step_once(&mut self) -> Result<(), BrokerError> {
        loop {
            let output = self.node.advance().map_err(|error| BrokerError::Quorum(error.to_string()))?;
            if output.messages.is_empty() && output.applied.is_empty() {
                return Ok(());
            }
            self.send(output.messages);
            for applied in output.applied {
                match applied {
                    Applied::Snapshot { index, data, .. } => self.load_snapshot(index, data)?,
                    Applied::Entry(entry) => {
                        if !entry.data.is_empty() {
                            self.apply(entry.index, entry.data)?;
                        }
                        if let Some(id) = entry.proposal {
                            if let Some((_, reply)) = self.pending.remove(&id) {
                                let _ = reply.send(Ok(()));
                            }
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, messages: Vec<Message>) {
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for message in messages {
            if message.get_msg_type() == MessageType::MsgSnapshot {
                let to = message.to;
                let sent = self.links.send(to, vec![message]);
                self.node.report_snapshot(to, sent);
                continue;
            }
            by_peer.entry(message.to).or_default().push(message);
        }
        for (to, messages) in by_peer {
            self.links.send(to, messages);
        }
    }

    fn apply(&self, index: u64, data: Bytes) -> Result<(), BrokerError> {
        let Some(broker) = self.loader.upgrade() else { return Ok(()) };
        let batch = RecordBatch::new(data).map_err(|error| BrokerError::Quorum(format!("entry {index}: {error}")))?;
        let records = decode_batch(&batch)?;
        let offset = i64::try_from(index).unwrap_or(i64::MAX);
        if let Err(error) = broker.apply_committed(offset, &records) {
            // The image cannot follow the log past a record it cannot replay: a
            // bug, or a record from a newer version. Say so loudly; keep serving.
            tracing::error!("cannot apply committed metadata entry {index}: {error}");
        }
        Ok(())
    }

    fn load_snapshot(&self, index: u64, data: Bytes) -> Result<(), BrokerError> {
        let Some(broker) = self.loader.upgrade() else { return Ok(()) };
        let records = gregor_metadata::decode_snapshot(data)?;
        tracing::info!("loaded the metadata snapshot at {index} ({} records)", records.len());
        broker.load_snapshot(i64::try_from(index).unwrap_or(i64::MAX), records)
    }

    /// Writes the image as a snapshot at the applied index (the image this thread
    /// published last is exactly that one) and trims the log behind it.
    fn take_snapshot(&mut self) -> Result<(), BrokerError> {
        let Some(broker) = self.loader.upgrade() else { return Ok(()) };
        let image = broker.image();
        let now = crate::time::now_ms();
        self.node
            .take_snapshot_with(|index, term| {
                gregor_metadata::encode_snapshot(&image, index, term, now, now)
                    .map_err(|error| gregor_quorum::QuorumError::Disk(error.to_string()))
            })
            .map_err(|error| BrokerError::Quorum(error.to_string()))?;
        let (index, _) = self.node.snapshot_point();
        tracing::info!("took a metadata snapshot at {index}");
        Ok(())
    }

    fn publish_view(&self) {
        let to_i32 = |id: u64| i32::try_from(id).ok();
        let previous = match self.view.read() {
            Ok(view) => (view.leader_id, view.term),
            Err(poisoned) => (poisoned.get_ref().leader_id, poisoned.get_ref().term),
        };
        let view = QuorumView {
            leader_id: self.node.leader_id().and_then(to_i32),
            term: self.node.term(),
            may_decide: self.node.may_decide(),
            commit_index: self.node.commit_index(),
            applied_index: self.node.applied_index(),
            last_index: self.node.last_index(),
            voted_for: self.node.voted_for().and_then(to_i32),
            voters: self.node.voters(),
            last_contact_ms: HashMap::new(),
            failed: None,
        };
        if (view.leader_id, view.term) != previous && view.leader_id.is_some() {
            tracing::info!(
                "metadata quorum: node {} leads in epoch {} (this node: {})",
                view.leader_id.unwrap_or(-1),
                view.term,
                self.node.node_id()
            );
        }
        match self.view.write() {
            Ok(mut published) => *published = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }
}

/// When to take a snapshot: `metadata.log.max.record.bytes.between.snapshots`.
fn snapshot_bytes_max(config: &BrokerConfig) -> u64 {
    u64::try_from(config.metadata_log_max_record_bytes_between_snapshots).unwrap_or(20 * 1024 * 1024).max(1)
}
