//! Deterministic simulation of the metadata quorum: the real raft-rs driver
//! ([`QuorumNode`]) and the real controller decisions of `gregor-metadata`, with a
//! simulated clock, network (loss, delay, duplication, partitions) and disks that
//! survive crashes. Each seed replays exactly; a failure prints its seed, and
//! `SIMULATION_SEED=<n> cargo test -p gregor-quorum --test simulation` replays it.
//!
//! Checked on every seed:
//! - no two nodes ever apply different entries at one index (nothing reordered);
//! - every decision a leader saw committed is in every node's final history,
//!   exactly once (nothing acknowledged is lost);
//! - once the faults stop, every node converges to the same metadata image and a
//!   new decision commits.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_metadata::controller::{ControllerContext, NewTopic};
use gregor_metadata::{decode_batch, encode_batch, MetadataImage, MetadataRecord};
use gregor_protocol::records::RecordBatch;
use gregor_protocol::Uuid;
use gregor_quorum::{Applied, MemoryDisk, Message, MessageType, QuorumNode, QuorumSettings};
use std::collections::{BTreeMap, BTreeSet};

const SEEDS_DEFAULT: u64 = 1000;
const FAULT_TICKS: u64 = 400;
const HEAL_TICKS_MAX: u64 = 400;

/// splitmix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn chance(&mut self, per_thousand: u64) -> bool {
        self.below(1000) < per_thousand
    }
}

/// The state machine: the metadata image and the history that built it.
#[derive(Clone, Default)]
struct StateMachine {
    image: MetadataImage,
    /// (index, entry data) of every applied non-empty entry since the start.
    history: Vec<(u64, Bytes)>,
}

impl StateMachine {
    fn apply(&mut self, index: u64, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        let batch = RecordBatch::new(data.clone()).expect("a committed entry is a record batch");
        for record in decode_batch(&batch).expect("a committed entry decodes") {
            self.image.replay(&record).expect("a committed record replays");
        }
        self.history.push((index, data.clone()));
    }

    /// The snapshot is the history itself, so that an installed snapshot can be
    /// checked entry by entry against what the other nodes applied.
    fn snapshot(&self) -> Bytes {
        let mut bytes = BytesMut::new();
        for (index, data) in &self.history {
            bytes.put_u64(*index);
            bytes.put_u32(data.len() as u32);
            bytes.put_slice(data);
        }
        bytes.freeze()
    }

    fn from_snapshot(mut bytes: Bytes) -> Self {
        let mut machine = StateMachine::default();
        while bytes.has_remaining() {
            let index = bytes.get_u64();
            let len = bytes.get_u32() as usize;
            let data = bytes.split_to(len);
            machine.apply(index, &data);
        }
        machine
    }
}

struct SimNode {
    node: Option<QuorumNode<MemoryDisk>>,
    disk: MemoryDisk,
    machine: StateMachine,
    settings: QuorumSettings,
    restarts: u64,
}

struct InFlight {
    deliver_at: u64,
    message: Message,
}

struct Simulation {
    rng: Rng,
    now: u64,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    /// Pairs (from, to) whose messages are dropped.
    cut: BTreeSet<(u64, u64)>,
    /// Every index applied anywhere, with its data: all nodes must agree.
    applied_anywhere: BTreeMap<u64, Bytes>,
    /// Topic names whose creation a leader saw committed.
    acknowledged: BTreeSet<String>,
    pending: BTreeMap<(u64, u64), String>,
    next_topic: u64,
    seed: u64,
    stats: Stats,
}

/// What the faults did, summed over seeds: a run where none happened proves nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    crashes: u64,
    snapshots_installed: u64,
    snapshots_taken: u64,
    acknowledged: u64,
    leader_changes: u64,
}

fn settings(node_id: u64, voters: &[u64], rng: &mut Rng, incarnation: u64) -> QuorumSettings {
    // raft-rs randomises election timeouts with its own thread RNG; fixing each
    // node's timeout from the seed (a range of one) keeps the run deterministic.
    let election = 10 + rng.below(10) as usize;
    QuorumSettings {
        node_id,
        voters: voters.to_vec(),
        election_ticks_min: election,
        election_ticks_max: election + 1,
        heartbeat_ticks: 2,
        message_bytes_max: 64 * 1024,
        inflight_messages_max: 64,
        incarnation,
    }
}

impl Simulation {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let count = if rng.chance(300) { 5 } else { 3 };
        let voters: Vec<u64> = (1..=count).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let settings = settings(id, &voters, &mut rng, 0);
                let disk = MemoryDisk::default();
                let (node, start) = QuorumNode::open(&settings, disk.clone()).expect("a new node opens");
                assert!(start.is_none());
                SimNode { node: Some(node), disk, machine: StateMachine::default(), settings, restarts: 0 }
            })
            .collect();
        Simulation {
            rng,
            now: 0,
            nodes,
            network: Vec::new(),
            cut: BTreeSet::new(),
            applied_anywhere: BTreeMap::new(),
            acknowledged: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_topic: 0,
            seed,
            stats: Stats::default(),
        }
    }

    fn index_of(&self, node_id: u64) -> usize {
        (node_id - 1) as usize
    }

    fn advance(&mut self, at: usize) {
        let Some(node) = self.nodes[at].node.as_mut() else { return };
        let output = node.advance().expect("advance");
        let node_id = node.node_id();
        for message in output.messages {
            let snapshot_to = (message.get_msg_type() == MessageType::MsgSnapshot).then_some(message.to);
            let sent = self.send(message);
            if let (Some(to), Some(node)) = (snapshot_to, self.nodes[at].node.as_mut()) {
                node.report_snapshot(to, sent);
            }
        }
        for applied in output.applied {
            match applied {
                Applied::Snapshot { index, data, .. } => {
                    self.stats.snapshots_installed += 1;
                    let machine = StateMachine::from_snapshot(data);
                    for (at_index, data) in &machine.history {
                        self.check_agreement(*at_index, data);
                    }
                    assert!(machine.history.last().is_none_or(|(last, _)| *last <= index));
                    self.nodes[at].machine = machine;
                }
                Applied::Entry(entry) => {
                    self.check_agreement(entry.index, &entry.data);
                    self.nodes[at].machine.apply(entry.index, &entry.data);
                    if let Some(proposal) = entry.proposal {
                        if let Some(name) = self.pending.remove(&(node_id, proposal)) {
                            self.acknowledged.insert(name);
                        }
                    }
                }
            }
        }
        // Small snapshots often, so that installs and compaction are exercised.
        let node = self.nodes[at].node.as_mut().expect("still running");
        if node.entry_bytes_since_snapshot() > 4096 && self.rng.chance(200) {
            self.stats.snapshots_taken += 1;
            let data = self.nodes[at].machine.snapshot();
            self.nodes[at].node.as_mut().expect("still running").take_snapshot(data).expect("snapshot");
        }
    }

    fn check_agreement(&mut self, index: u64, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        match self.applied_anywhere.get(&index) {
            Some(existing) => {
                assert_eq!(existing, data, "seed {}: two nodes applied different entries at {index}", self.seed)
            }
            None => {
                self.applied_anywhere.insert(index, data.clone());
            }
        }
    }

    fn send(&mut self, message: Message) -> bool {
        if self.cut.contains(&(message.from, message.to)) || self.rng.chance(50) {
            return false;
        }
        let delay = 1 + self.rng.below(4);
        if self.rng.chance(20) {
            self.network.push(InFlight { deliver_at: self.now + delay + 3, message: message.clone() });
        }
        self.network.push(InFlight { deliver_at: self.now + delay, message });
        true
    }

    fn deliver(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.network).into_iter().partition(|m| m.deliver_at <= now);
        self.network = later;
        for in_flight in due {
            let at = self.index_of(in_flight.message.to);
            let Some(node) = self.nodes[at].node.as_mut() else { continue };
            // Messages from an unknown term or peer are refused by raft-rs; a real
            // transport logs and drops them the same way.
            let _ = node.step(in_flight.message);
            self.advance(at);
        }
    }

    /// A leader that may decide creates a topic through the real controller code.
    fn decide(&mut self, at: usize) {
        let Some(node) = self.nodes[at].node.as_ref() else { return };
        if !node.may_decide() {
            return;
        }
        let image = &self.nodes[at].machine.image;
        let node_id = node.node_id();
        let records: Vec<MetadataRecord> = if image.features().is_empty() {
            let mut records = gregor_metadata::finalize_missing_features(image);
            for broker in 1..=self.nodes.len() as i32 {
                let listeners = vec![("PLAINTEXT".to_owned(), "127.0.0.1".to_owned(), 9091 + broker as u16)];
                records.extend(gregor_metadata::controller::register_broker(broker, Uuid::ZERO, &listeners, 1));
            }
            records
        } else {
            let name = format!("topic-{}", self.next_topic);
            self.next_topic += 1;
            let topics = [NewTopic {
                name: name.clone(),
                num_partitions: 1 + self.rng.below(3) as i32,
                replication_factor: 1,
                assignments: Vec::new(),
                configs: Vec::new(),
            }];
            let (records, outcomes) = create_topics(image, &topics, &mut self.rng);
            assert_eq!(outcomes, 1);
            let Some(records) = records else { return };
            // The proposal id is known once proposed; remember the name under it.
            let node = self.nodes[at].node.as_mut().expect("running");
            let data = encode_batch(&records, self.now as i64).expect("encodes").freeze();
            if let Ok(id) = node.propose(data) {
                self.pending.insert((node_id, id), name);
            }
            self.advance(at);
            return;
        };
        let node = self.nodes[at].node.as_mut().expect("running");
        let data = encode_batch(&records, self.now as i64).expect("encodes").freeze();
        let _ = node.propose(data);
        self.advance(at);
    }

    fn crash(&mut self, at: usize) {
        if self.nodes[at].node.take().is_some() {
            self.stats.crashes += 1;
            self.nodes[at].machine = StateMachine::default();
        }
    }

    fn restart(&mut self, at: usize) {
        if self.nodes[at].node.is_some() {
            return;
        }
        self.nodes[at].restarts += 1;
        let mut settings = self.nodes[at].settings.clone();
        settings.incarnation = self.nodes[at].restarts;
        let (node, start) = QuorumNode::open(&settings, self.nodes[at].disk.clone()).expect("a node reopens");
        self.nodes[at].machine = match start {
            Some(Applied::Snapshot { data, .. }) => StateMachine::from_snapshot(data),
            _ => StateMachine::default(),
        };
        self.nodes[at].node = Some(node);
        self.advance(at);
    }

    fn step_tick(&mut self, faults: bool, decisions: bool) {
        self.now += 1;
        for at in 0..self.nodes.len() {
            if let Some(node) = self.nodes[at].node.as_mut() {
                // Clocks drift: now and then a node misses a tick.
                if !(faults && self.rng.chance(30)) {
                    node.tick();
                }
                self.advance(at);
            }
        }
        self.deliver();
        if faults {
            let count = self.nodes.len();
            if self.rng.chance(8) {
                let at = self.rng.below(count as u64) as usize;
                // Never more than a minority down, so that progress stays possible.
                let down = self.nodes.iter().filter(|node| node.node.is_none()).count();
                if down < (count - 1) / 2 {
                    self.crash(at);
                }
            }
            if self.rng.chance(20) {
                let at = self.rng.below(count as u64) as usize;
                self.restart(at);
            }
            if self.rng.chance(10) {
                let a = 1 + self.rng.below(count as u64);
                let b = 1 + self.rng.below(count as u64);
                if a != b {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
            if self.rng.chance(15) {
                self.cut.clear();
            }
        }
        if decisions {
            for at in 0..self.nodes.len() {
                if self.rng.chance(100) {
                    self.decide(at);
                }
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
        for at in 0..self.nodes.len() {
            self.restart(at);
        }
    }

    fn converged(&self) -> bool {
        let leaders: Vec<_> = self.nodes.iter().filter_map(|n| n.node.as_ref()).filter(|n| n.may_decide()).collect();
        if leaders.len() != 1 {
            return false;
        }
        let commit = leaders[0].commit_index();
        commit == leaders[0].last_index()
            && self.nodes.iter().all(|n| n.node.as_ref().is_some_and(|node| node.applied_index() == commit))
    }
}

fn create_topics(image: &MetadataImage, topics: &[NewTopic], rng: &mut Rng) -> (Option<Vec<MetadataRecord>>, usize) {
    let valid = |_: &str, _: &str| Ok(());
    let valid_groups = |_: &std::collections::BTreeMap<String, String>| Ok(());
    let is_list = |_: &str| false;
    let no_default = |_: &gregor_metadata::ConfigResource, _: &str| None;
    let seed = rng.next();
    let mut counter = 0u64;
    let mut new_uuid = move || {
        counter += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        bytes[8..].copy_from_slice(&counter.to_be_bytes());
        Uuid(bytes)
    };
    let mut random_state = seed;
    let mut random = move || {
        random_state = random_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        random_state >> 11
    };
    let mut context = ControllerContext {
        node_id: 1,
        default_num_partitions: 1,
        default_replication_factor: 1,
        validate_topic_config: &valid,
        validate_broker_config: &valid,
        validate_group_configs: &valid_groups,
        is_list_config: &is_list,
        default_value: &no_default,
        new_uuid: &mut new_uuid,
        random: &mut random,
    };
    let (records, outcomes) = gregor_metadata::controller::create_topics(image, &mut context, topics, false);
    let ok = outcomes.iter().all(|outcome| outcome.error == gregor_protocol::ErrorCode::None);
    (ok.then_some(records), outcomes.len())
}

fn run_seed(seed: u64) -> Stats {
    let mut simulation = Simulation::new(seed);
    for _ in 0..FAULT_TICKS {
        simulation.step_tick(true, true);
    }
    simulation.heal();
    let settle = |simulation: &mut Simulation, what: &str| {
        for _ in 0..HEAL_TICKS_MAX {
            if simulation.converged() {
                return;
            }
            simulation.step_tick(false, false);
        }
        let states: Vec<String> = simulation
            .nodes
            .iter()
            .map(|n| match n.node.as_ref() {
                Some(node) => format!(
                    "node {} leader={:?} may_decide={} term={} commit={} last={} applied={}",
                    node.node_id(),
                    node.leader_id(),
                    node.may_decide(),
                    node.term(),
                    node.commit_index(),
                    node.last_index(),
                    node.applied_index()
                ),
                None => "down".to_owned(),
            })
            .collect();
        panic!("seed {seed}: no convergence within {HEAL_TICKS_MAX} ticks {what}: {states:#?}");
    };
    settle(&mut simulation, "after healing");
    // A new decision still commits on the healed quorum.
    let before = simulation.acknowledged.len();
    for _ in 0..HEAL_TICKS_MAX {
        for at in 0..simulation.nodes.len() {
            simulation.decide(at);
        }
        simulation.step_tick(false, false);
        if simulation.acknowledged.len() > before {
            break;
        }
    }
    assert!(simulation.acknowledged.len() > before, "seed {seed}: the healed quorum commits nothing");
    settle(&mut simulation, "after the last decision");
    let images: Vec<String> = simulation.nodes.iter().map(|node| format!("{:?}", node.machine.image)).collect();
    for image in &images[1..] {
        assert_eq!(image, &images[0], "seed {seed}: nodes converged to different images");
    }
    let first = &simulation.nodes[0].machine.image;
    for name in &simulation.acknowledged {
        assert!(first.topic(name).is_some(), "seed {seed}: acknowledged topic {name} lost");
    }
    let mut seen = BTreeSet::new();
    for (_, data) in &simulation.nodes[0].machine.history {
        assert!(seen.insert(data.clone()), "seed {seed}: an entry applied twice");
    }
    simulation.stats.acknowledged = simulation.acknowledged.len() as u64;
    simulation.stats.leader_changes =
        simulation.nodes.iter().filter_map(|n| n.node.as_ref()).map(|n| n.term()).max().unwrap_or(0);
    simulation.stats
}

#[test]
fn committed_metadata_is_never_lost_or_reordered_and_nodes_converge() {
    if let Ok(seed) = std::env::var("SIMULATION_SEED") {
        run_seed(seed.parse().expect("SIMULATION_SEED is a number"));
        return;
    }
    let seeds = std::env::var("SIMULATION_SEEDS").ok().and_then(|count| count.parse().ok()).unwrap_or(SEEDS_DEFAULT);
    let mut total = Stats::default();
    for seed in 0..seeds {
        let stats = run_seed(seed);
        total.crashes += stats.crashes;
        total.snapshots_installed += stats.snapshots_installed;
        total.snapshots_taken += stats.snapshots_taken;
        total.acknowledged += stats.acknowledged;
        total.leader_changes += stats.leader_changes;
    }
    eprintln!("{seeds} seeds: {total:?}");
    assert!(
        total.crashes > 0 && total.snapshots_taken > 0 && total.snapshots_installed > 0 && total.leader_changes > seeds
    );
    assert!(total.acknowledged > seeds, "too few decisions committed to prove anything");
}
