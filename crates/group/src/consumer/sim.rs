//! Deterministic simulation of a KIP-848 group: clients that behave like
//! librdkafka's consumer-protocol consumer (join at epoch 0, heartbeat with the
//! partitions they own, take the assignment the answer carries at once, rejoin
//! after being fenced) are driven in a random order with leaves, crashes,
//! restarts, partitions added to the topic, and clock jumps past session timeouts.
//!
//! Safety, after every step: no partition is owned by two live clients at once
//! (the point of incremental revocation), counting only clients still inside their
//! session (a client whose session ran out gives its partitions up, as real
//! clients do). Liveness, at the end: the live clients
//! converge to the group epoch with every partition owned by exactly one of them,
//! balanced within one. Then a fresh shard that replays the log has the same
//! group epoch, members and assignments.

use crate::classic::testkit::FakeTopics;
use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use crate::shard::{Group, GroupCoordinatorShard, RequestContext};
use gregor_protocol::messages::consumer_group_heartbeat_request::{ConsumerGroupHeartbeatRequest, TopicPartitions};
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const G: &str = "sim";
const TOPIC: &str = "t1";
const CLIENTS: usize = 4;
const PARTITIONS_MAX: i32 = 9;

#[derive(Debug, Clone, Copy)]
enum Op {
    Step(usize),
    Leave(usize),
    Crash(usize),
    Restart(usize),
    Grow,
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..CLIENTS).prop_map(Op::Step),
        1 => (0..CLIENTS).prop_map(Op::Leave),
        1 => (0..CLIENTS).prop_map(Op::Crash),
        1 => (0..CLIENTS).prop_map(Op::Restart),
        1 => Just(Op::Grow),
        2 => (0u16..60_000).prop_map(Op::Advance),
    ]
}

struct Client {
    member_id: String,
    incarnation: u32,
    epoch: i32,
    owned: BTreeSet<(Uuid, i32)>,
    alive: bool,
    /// When the coordinator last accepted a heartbeat of this client.
    last_ok_ms: i64,
}

struct Sim {
    shard: GroupCoordinatorShard,
    topics: FakeTopics,
    now: i64,
    next_reply: u64,
    log: Vec<CoordinatorRecord>,
    clients: Vec<Client>,
}

fn member_id(index: usize, incarnation: u32) -> String {
    format!("member{index}x{incarnation:015}")
}

impl Sim {
    fn new() -> Sim {
        let config = GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() };
        Sim {
            shard: GroupCoordinatorShard::new(3, config),
            topics: FakeTopics::with(&[(TOPIC, 3)]),
            now: 1_000_000,
            next_reply: 0,
            log: Vec::new(),
            clients: (0..CLIENTS)
                .map(|index| Client {
                    member_id: member_id(index, 0),
                    incarnation: 0,
                    epoch: 0,
                    owned: BTreeSet::new(),
                    alive: true,
                    last_ok_ms: 0,
                })
                .collect(),
        }
    }

    fn send(&mut self, request: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        self.next_reply += 1;
        let ctx = RequestContext {
            api_version: 1,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            now_ms: self.now,
            reply: self.next_reply,
        };
        let effects = self.shard.consumer_group_heartbeat(&ctx, request, &self.topics);
        let mut answer = None;
        for record in effects.records {
            let (key, value) = record.encode().expect("record encodes");
            let decoded = CoordinatorRecord::decode(key, value).expect("record decodes").expect("known record");
            assert_eq!(decoded, record);
            self.log.push(record.clone());
            self.shard.replay(record);
        }
        for (reply, body) in effects.replies {
            assert_eq!(reply, ctx.reply, "a heartbeat answers only itself");
            assert!(answer.is_none(), "answered twice");
            answer = Some(body);
        }
        match answer {
            Some(ResponseBody::ConsumerGroupHeartbeat(response)) => response,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn advance(&mut self, ms: i64) {
        let target = self.now + ms;
        while let Some(deadline) = self.shard.next_deadline_ms() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            let effects = self.shard.poll_timers(self.now);
            assert!(effects.replies.is_empty(), "timers of a consumer group answer nobody");
            for record in effects.records {
                self.log.push(record.clone());
                self.shard.replay(record);
            }
        }
        self.now = target;
    }

    fn step(&mut self, index: usize) {
        let session_timeout_ms = i64::from(self.shard.config().consumer_session_timeout_ms);
        let now = self.now;
        let client = &mut self.clients[index];
        if !client.alive {
            return;
        }
        // A client that has not been heard within its session knows the coordinator
        // may have fenced it and gives its partitions up before anything else, as
        // librdkafka does when it loses its assignment.
        if client.epoch > 0 && now - client.last_ok_ms >= session_timeout_ms {
            client.owned.clear();
        }
        let joining = client.epoch == 0;
        let mut owned: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &client.owned {
            owned.entry(*topic).or_default().push(*partition);
        }
        let request = ConsumerGroupHeartbeatRequest {
            group_id: G.into(),
            member_id: client.member_id.clone(),
            member_epoch: client.epoch,
            rebalance_timeout_ms: if joining { 60_000 } else { -1 },
            subscribed_topic_names: joining.then(|| vec![TOPIC.to_string()]),
            topic_partitions: Some(
                owned
                    .into_iter()
                    .map(|(topic_id, partitions)| TopicPartitions { topic_id, partitions, ..Default::default() })
                    .collect(),
            ),
            ..Default::default()
        };
        let response = self.send(request);
        let client = &mut self.clients[index];
        match ErrorCode::from_code(response.error_code) {
            Some(ErrorCode::None) => {
                client.epoch = response.member_epoch;
                client.last_ok_ms = now;
                if let Some(assignment) = response.assignment {
                    client.owned = assignment
                        .topic_partitions
                        .iter()
                        .flat_map(|tp| tp.partitions.iter().map(move |partition| (tp.topic_id, *partition)))
                        .collect();
                }
            }
            // Fenced: the client loses its partitions and joins again, keeping its id.
            Some(ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId) => {
                client.epoch = 0;
                client.owned.clear();
            }
            other => panic!("unexpected ConsumerGroupHeartbeat error {other:?}: {response:?}"),
        }
    }

    fn leave(&mut self, index: usize) {
        if !self.clients[index].alive {
            return;
        }
        if self.clients[index].epoch > 0 {
            let request = ConsumerGroupHeartbeatRequest {
                group_id: G.into(),
                member_id: self.clients[index].member_id.clone(),
                member_epoch: -1,
                ..Default::default()
            };
            let response = self.send(request);
            let code = response.error_code;
            assert!(
                code == 0 || code == ErrorCode::UnknownMemberId.code() || code == ErrorCode::FencedMemberEpoch.code(),
                "unexpected leave answer {response:?}"
            );
        }
        let client = &mut self.clients[index];
        client.alive = false;
        client.owned.clear();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Step(index) => self.step(index),
            Op::Leave(index) => self.leave(index),
            Op::Crash(index) => {
                let client = &mut self.clients[index];
                client.alive = false;
                client.owned.clear();
            }
            Op::Restart(index) => {
                let client = &mut self.clients[index];
                if !client.alive {
                    client.incarnation += 1;
                    client.member_id = member_id(index, client.incarnation);
                    client.epoch = 0;
                    client.owned.clear();
                    client.alive = true;
                }
            }
            Op::Grow => {
                if let Some((_, count)) = self.topics.topics.get_mut(TOPIC) {
                    *count = (*count + 1).min(PARTITIONS_MAX);
                }
            }
            Op::Advance(ms) => self.advance(i64::from(ms)),
        }
        self.check_no_double_ownership();
    }

    /// Only clients within their session count: one whose session has run out at the
    /// coordinator is a zombie that drops its partitions before its next request.
    fn check_no_double_ownership(&self) {
        let session_timeout_ms = i64::from(self.shard.config().consumer_session_timeout_ms);
        let mut owners: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
        let current = |client: &&Client| client.alive && self.now - client.last_ok_ms < session_timeout_ms;
        for (index, client) in self.clients.iter().enumerate().filter(|(_, client)| current(client)) {
            for partition in &client.owned {
                if let Some(other) = owners.insert(*partition, index) {
                    panic!("partition {partition:?} owned by clients {other} and {index} at once");
                }
            }
        }
    }

    fn group_epoch(&self) -> Option<i32> {
        match self.shard.group(G) {
            Some(Group::Consumer(group)) => Some(group.group_epoch),
            _ => None,
        }
    }

    /// Runs every live client with heartbeats well inside the session timeout
    /// until the assignment is complete, balanced and at the group epoch.
    fn converge(&mut self) {
        let live: Vec<usize> = (0..CLIENTS).filter(|&index| self.clients[index].alive).collect();
        if live.is_empty() {
            return;
        }
        let topic_id = self.topics.topics[TOPIC].0;
        for _ in 0..1_000 {
            for &index in &live {
                self.step(index);
                self.check_no_double_ownership();
            }
            self.advance(500);
            let partitions = self.topics.topics[TOPIC].1;
            let owned: usize = live.iter().map(|&index| self.clients[index].owned.len()).sum();
            let counts: Vec<usize> = live.iter().map(|&index| self.clients[index].owned.len()).collect();
            let balanced = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1;
            let epoch = self.group_epoch();
            let at_epoch = live.iter().all(|&index| Some(self.clients[index].epoch) == epoch);
            let all_owned = (0..partitions)
                .all(|partition| live.iter().any(|&index| self.clients[index].owned.contains(&(topic_id, partition))));
            if owned == partitions as usize && all_owned && balanced && at_epoch {
                return;
            }
        }
        let state: Vec<(usize, i32, usize)> =
            live.iter().map(|&index| (index, self.clients[index].epoch, self.clients[index].owned.len())).collect();
        panic!("no convergence: clients {state:?}, group epoch {:?}", self.group_epoch());
    }
}

fn snapshot(shard: &GroupCoordinatorShard) -> Option<String> {
    match shard.group(G) {
        Some(Group::Consumer(group)) => {
            let mut members: Vec<String> = group
                .members
                .values()
                .map(|member| format!("{}@{}:{:?}", member.member_id, member.member_epoch, member.assigned))
                .collect();
            members.sort();
            Some(format!("epoch {} assignment {} {members:?}", group.group_epoch, group.assignment_epoch))
        }
        _ => None,
    }
}

/// 64 cases in CI; `GREGOR_SIM_CASES=1500` for a longer run.
fn sim_cases() -> u32 {
    std::env::var("GREGOR_SIM_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: sim_cases(), ..ProptestConfig::default() })]

    #[test]
    fn consumer_group_simulation(ops in proptest::collection::vec(op(), 0..80)) {
        let mut sim = Sim::new();
        for op in ops {
            sim.apply(op);
        }
        sim.converge();
        let mut reloaded = GroupCoordinatorShard::new(3, sim.shard.config().clone());
        for record in sim.log.clone() {
            reloaded.replay(record);
        }
        reloaded.finish_load(sim.now);
        prop_assert_eq!(snapshot(&reloaded), snapshot(&sim.shard));
    }
}
