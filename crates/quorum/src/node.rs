//! One member of the quorum: raft-rs's `RawNode` with the durable state kept in
//! step. The caller owns time and the network: it calls [`QuorumNode::tick`] at a
//! fixed interval, hands in messages from peers with [`QuorumNode::step`], and after
//! either calls [`QuorumNode::advance`], which persists what must be persisted and
//! returns the messages to send and the entries committed, in order.

use crate::disk::{DurableState, QuorumDisk};
use crate::memory_log::MemoryLog;
use crate::QuorumError;
use bytes::Bytes;
use raft::prelude::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, StateRole};

/// How a node runs the Raft protocol. Times are in ticks of the caller's clock.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: u64,
    /// The voters a new quorum starts with (`controller.quorum.voters`).
    pub voters: Vec<u64>,
    /// A follower that hears nothing from a leader for this many ticks (randomised
    /// between the two bounds) starts an election.
    pub election_ticks_min: usize,
    pub election_ticks_max: usize,
    pub heartbeat_ticks: usize,
    /// Bounds on what one append message and the pipeline to one follower carry.
    pub message_bytes_max: u64,
    pub inflight_messages_max: usize,
    /// Random bits that make this run's proposal tags differ from an earlier run's.
    pub incarnation: u64,
}

/// One committed entry, for the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEntry {
    pub index: u64,
    pub term: u64,
    /// The application's bytes; empty for a new leader's no-op and for membership changes.
    pub data: Bytes,
    /// Set when this node proposed the entry in this run: the id [`QuorumNode::propose`] returned.
    pub proposal: Option<u64>,
}

/// What the state machine must apply, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Entry(CommittedEntry),
    /// Replace the state with this snapshot's (sent by the leader to a node that
    /// fell behind the start of its log).
    Snapshot {
        index: u64,
        term: u64,
        data: Bytes,
    },
}

/// The result of one [`QuorumNode::advance`].
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<Message>,
    pub applied: Vec<Applied>,
}

/// A voter's replication progress, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterProgress {
    pub node_id: u64,
    /// The highest index known to be replicated on it (-1 unknown), leader's view.
    pub matched_index: u64,
}

const PROPOSAL_TAG_BYTES: usize = 24;

pub struct QuorumNode<D: QuorumDisk> {
    raw: RawNode<MemoryLog>,
    log: MemoryLog,
    disk: D,
    node_id: u64,
    incarnation: u64,
    next_proposal: u64,
    applied_index: u64,
    /// The first index of this node's current leadership: it may decide only once
    /// that entry is applied, because only then has it applied every earlier commit.
    term_start_index: Option<u64>,
    leader_hint: Option<u64>,
}

impl<D: QuorumDisk> QuorumNode<D> {
    /// Opens a node on its durable state. Returns it and the snapshot the state
    /// machine must start from, if any; the committed entries after it come out of
    /// the following [`QuorumNode::advance`] calls.
    pub fn open(settings: &QuorumSettings, mut disk: D) -> Result<(Self, Option<Applied>), QuorumError> {
        let DurableState { hard_state, snapshot, entries } = disk.load()?;
        let log = MemoryLog::default();
        let mut start = None;
        let conf_state = match &snapshot {
            Some(snapshot) if !snapshot.get_metadata().get_conf_state().voters.is_empty() => {
                snapshot.get_metadata().get_conf_state().clone()
            }
            _ => ConfState::from((settings.voters.clone(), Vec::<u64>::new())),
        };
        log.set_conf_state(conf_state);
        let mut applied = 0;
        if let Some(snapshot) = snapshot {
            log.apply_snapshot(&snapshot);
            let metadata = snapshot.get_metadata();
            applied = metadata.index;
            start = Some(Applied::Snapshot { index: metadata.index, term: metadata.term, data: snapshot.data.clone() });
        }
        log.append(&entries);
        let mut hard_state = hard_state;
        // A commit index past the entries held (a torn tail) is not trusted.
        hard_state.commit = hard_state.commit.min(log.last_index()).max(applied);
        log.set_hard_state(hard_state);
        let config = raft::Config {
            id: settings.node_id,
            election_tick: settings.election_ticks_min,
            min_election_tick: settings.election_ticks_min,
            max_election_tick: settings.election_ticks_max,
            heartbeat_tick: settings.heartbeat_ticks,
            applied,
            max_size_per_msg: settings.message_bytes_max,
            max_inflight_msgs: settings.inflight_messages_max,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, log.clone(), &logger)?;
        let node = QuorumNode {
            raw,
            log,
            disk,
            node_id: settings.node_id,
            incarnation: settings.incarnation,
            next_proposal: 0,
            applied_index: applied,
            term_start_index: None,
            leader_hint: None,
        };
        Ok((node, start))
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Moves the logical clock one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// Hands in a message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), QuorumError> {
        self.raw.step(message)?;
        Ok(())
    }

    /// Starts an election now (a single voter need not wait a timeout).
    pub fn campaign(&mut self) -> Result<(), QuorumError> {
        self.raw.campaign()?;
        Ok(())
    }

    /// Proposes `data` as the next entry. Returns the id its [`CommittedEntry`]
    /// will carry. The entry may still be lost if leadership changes before it
    /// commits: the caller waits for the id and gives up when the leader changes.
    pub fn propose(&mut self, data: Bytes) -> Result<u64, QuorumError> {
        if !self.is_leader() {
            return Err(QuorumError::NotLeader { leader: self.leader_id() });
        }
        let id = self.next_proposal;
        self.next_proposal += 1;
        let mut tag = Vec::with_capacity(PROPOSAL_TAG_BYTES);
        tag.extend_from_slice(&self.node_id.to_be_bytes());
        tag.extend_from_slice(&self.incarnation.to_be_bytes());
        tag.extend_from_slice(&id.to_be_bytes());
        self.raw.propose(tag, data.to_vec()).map_err(|error| match error {
            raft::Error::ProposalDropped => QuorumError::NotLeader { leader: self.leader_id() },
            other => QuorumError::Raft(other),
        })?;
        Ok(id)
    }

    /// Tells raft-rs a peer could not be reached, so it stops pipelining to it.
    pub fn report_unreachable(&mut self, node_id: u64) {
        self.raw.report_unreachable(node_id);
    }

    /// Tells raft-rs whether a snapshot message reached `node_id`: until it is
    /// told, it sends that follower nothing else.
    pub fn report_snapshot(&mut self, node_id: u64, delivered: bool) {
        let status = if delivered { raft::SnapshotStatus::Finish } else { raft::SnapshotStatus::Failure };
        self.raw.report_snapshot(node_id, status);
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this node knows of.
    pub fn leader_id(&self) -> Option<u64> {
        match self.raw.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn voted_for(&self) -> Option<u64> {
        match self.raw.raft.vote {
            0 => None,
            id => Some(id),
        }
    }

    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn last_index(&self) -> u64 {
        self.raw.raft.raft_log.last_index()
    }

    /// Whether this node leads and has applied every entry committed before its
    /// leadership, so that a decision it takes now reads the whole history.
    pub fn may_decide(&self) -> bool {
        self.is_leader() && self.term_start_index.is_some_and(|start| self.applied_index >= start)
    }

    /// The voters and, on the leader, how far each has replicated.
    pub fn voters(&self) -> Vec<VoterProgress> {
        let conf = self.log.conf_state();
        let tracker = self.raw.raft.prs();
        conf.voters
            .iter()
            .map(|&node_id| VoterProgress {
                node_id,
                matched_index: tracker.get(node_id).map(|progress| progress.matched).unwrap_or(0),
            })
            .collect()
    }

    /// The index and term of the snapshot the log starts after.
    pub fn snapshot_point(&self) -> (u64, u64) {
        self.log.snapshot_point()
    }

    /// Bytes of entries held after the last snapshot.
    pub fn entry_bytes_since_snapshot(&self) -> u64 {
        self.log.entry_bytes()
    }

    /// Takes a snapshot at the applied index: `data` is the state machine's state
    /// there. The entries it covers are dropped from memory and may be from disk.
    pub fn take_snapshot(&mut self, data: Bytes) -> Result<(), QuorumError> {
        self.take_snapshot_with(|_, _| Ok(data))
    }

    /// [`QuorumNode::take_snapshot`], with the data made from the applied index and its term.
    pub fn take_snapshot_with(
        &mut self,
        make: impl FnOnce(u64, u64) -> Result<Bytes, QuorumError>,
    ) -> Result<(), QuorumError> {
        let index = self.applied_index;
        let (snapshot_index, _) = self.log.snapshot_point();
        if index <= snapshot_index {
            return Ok(());
        }
        let term = raft::Storage::term(&self.log, index)?;
        let data = make(index, term)?;
        let mut snapshot = Snapshot::default();
        let metadata = snapshot.mut_metadata();
        metadata.index = index;
        metadata.term = term;
        metadata.set_conf_state(self.log.conf_state());
        snapshot.data = data.clone();
        self.disk.save_snapshot(&snapshot)?;
        self.disk.sync()?;
        self.log.compact(index, term, data);
        Ok(())
    }

    /// Persists what raft-rs produced, then returns the messages to send and the
    /// entries to apply. Call after every tick, step and proposal.
    pub fn advance(&mut self) -> Result<Output, QuorumError> {
        let mut output = Output::default();
        if !self.raw.has_ready() {
            return Ok(output);
        }
        let mut ready = self.raw.ready();
        if let Some(soft) = ready.ss() {
            self.leader_hint = match soft.leader_id {
                0 => None,
                id => Some(id),
            };
            if soft.raft_state == StateRole::Leader {
                // raft-rs appended the leader's no-op entry at its last index.
                self.term_start_index = Some(self.raw.raft.raft_log.last_index());
            } else {
                self.term_start_index = None;
            }
        }
        // A leader may send before it persists (Raft allows it; its own vote counts
        // only once persisted).
        output.messages.extend(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.disk.save_snapshot(&snapshot)?;
            self.log.apply_snapshot(&snapshot);
            let metadata = snapshot.get_metadata();
            self.applied_index = metadata.index;
            output.applied.push(Applied::Snapshot {
                index: metadata.index,
                term: metadata.term,
                data: snapshot.data.clone(),
            });
        }
        let committed = ready.take_committed_entries();
        self.apply_entries(committed, &mut output)?;
        if !ready.entries().is_empty() {
            self.disk.append_entries(ready.entries())?;
            self.log.append(ready.entries());
        }
        if let Some(hard_state) = ready.hs() {
            self.disk.save_hard_state(hard_state)?;
            self.log.set_hard_state(hard_state.clone());
        }
        if ready.must_sync() || !ready.snapshot().is_empty() {
            self.disk.sync()?;
        }
        output.messages.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit);
            let hard_state = self.log.hard_state();
            self.disk.save_hard_state(&hard_state)?;
        }
        output.messages.extend(light.take_messages());
        self.apply_entries(light.take_committed_entries(), &mut output)?;
        self.raw.advance_apply();
        Ok(output)
    }

    fn apply_entries(&mut self, entries: Vec<Entry>, output: &mut Output) -> Result<(), QuorumError> {
        for entry in entries {
            self.applied_index = self.applied_index.max(entry.index);
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    let proposal = self.own_proposal(&entry.context);
                    output.applied.push(Applied::Entry(CommittedEntry {
                        index: entry.index,
                        term: entry.term,
                        data: entry.data.clone(),
                        proposal,
                    }));
                }
                EntryType::EntryConfChange => {
                    let change: ConfChange = protobuf::Message::parse_from_bytes(&entry.data)
                        .map_err(|error| QuorumError::Malformed(error.to_string()))?;
                    let conf_state = self.raw.apply_conf_change(&change)?;
                    self.log.set_conf_state(conf_state);
                    output.applied.push(Applied::Entry(CommittedEntry {
                        index: entry.index,
                        term: entry.term,
                        data: Bytes::new(),
                        proposal: None,
                    }));
                }
                EntryType::EntryConfChangeV2 => {
                    let change: ConfChangeV2 = protobuf::Message::parse_from_bytes(&entry.data)
                        .map_err(|error| QuorumError::Malformed(error.to_string()))?;
                    let conf_state = self.raw.apply_conf_change(&change)?;
                    self.log.set_conf_state(conf_state);
                    output.applied.push(Applied::Entry(CommittedEntry {
                        index: entry.index,
                        term: entry.term,
                        data: Bytes::new(),
                        proposal: None,
                    }));
                }
            }
        }
        Ok(())
    }

    fn own_proposal(&self, context: &[u8]) -> Option<u64> {
        let tag: &[u8; PROPOSAL_TAG_BYTES] = context.try_into().ok()?;
        let node = u64::from_be_bytes(tag[0..8].try_into().ok()?);
        let incarnation = u64::from_be_bytes(tag[8..16].try_into().ok()?);
        let id = u64::from_be_bytes(tag[16..24].try_into().ok()?);
        (node == self.node_id && incarnation == self.incarnation).then_some(id)
    }
}

/// An entry's or a snapshot's index and bytes.
pub type IndexedData = (u64, Bytes);

impl<D: QuorumDisk> QuorumNode<D> {
    /// Committed entries after `after_index` for an observer, up to about
    /// `bytes_max`; when the log no longer holds the next one, the snapshot it must
    /// start from (index, data) instead.
    pub fn committed_after(&self, after_index: u64, bytes_max: usize) -> (Option<IndexedData>, Vec<IndexedData>) {
        let commit = self.applied_index.min(self.commit_index());
        let (snapshot_index, _) = self.log.snapshot_point();
        if after_index < snapshot_index {
            let snapshot = raft::Storage::snapshot(&self.log, 0, 0).ok().map(|snapshot| {
                let index = snapshot.get_metadata().index;
                (index, snapshot.data)
            });
            return (snapshot, Vec::new());
        }
        if after_index >= commit {
            return (None, Vec::new());
        }
        let entries = raft::Storage::entries(
            &self.log,
            after_index + 1,
            commit + 1,
            bytes_max as u64,
            raft::GetEntriesContext::empty(false),
        )
        .unwrap_or_default();
        let entries = entries
            .into_iter()
            .map(|entry| {
                // Only the application's entries carry data; the others are sent
                // empty so that the observer's index keeps step.
                let data = if entry.get_entry_type() == EntryType::EntryNormal { entry.data } else { Bytes::new() };
                (entry.index, data)
            })
            .collect();
        (None, entries)
    }
}
