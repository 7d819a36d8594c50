//! Deterministic simulation of a classic group: clients that behave like real
//! consumers (join, the v4+ member-id step, the leader's assignment, sync,
//! heartbeats, rejoin on REBALANCE_IN_PROGRESS) are driven in a random order with
//! crashes, leaves, restarts and clock jumps, all on the fake clock of the test
//! harness, which also checks that every request is answered at most once and that
//! every answer encodes at its request's version.
//!
//! Checked throughout: one leader per generation, generations never go back, and a
//! member's SyncGroup answer is exactly what the leader of that generation sent for
//! it. At the end: the live clients converge to one stable generation that has all
//! of them; after they leave, every parked request has been answered, the group is
//! Empty, and replaying the log into a fresh shard gives the same group.

use super::testkit::{config, join_request, protocols, subscription, Harness};
use super::ClassicGroupState;
use crate::shard::{GroupCoordinatorShard, ReplyId};
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::leave_group_request::MemberIdentity;
use gregor_protocol::ErrorCode;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

const G: &str = "sim";
const CLIENTS: usize = 4;

#[derive(Debug, Clone)]
enum State {
    /// Must (re)join.
    Idle,
    Joining {
        reply: ReplyId,
    },
    Syncing {
        reply: ReplyId,
        generation: i32,
    },
    Stable {
        generation: i32,
    },
    /// Crashed or left: sends nothing.
    Gone,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Step(usize),
    Leave(usize),
    Crash(usize),
    Restart(usize),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..CLIENTS).prop_map(Op::Step),
        1 => (0..CLIENTS).prop_map(Op::Leave),
        1 => (0..CLIENTS).prop_map(Op::Crash),
        1 => (0..CLIENTS).prop_map(Op::Restart),
        3 => (0u16..15_000).prop_map(Op::Advance),
    ]
}

struct Client {
    member_id: String,
    join_version: i16,
    state: State,
}

struct Sim {
    h: Harness,
    clients: Vec<Client>,
    metadata: Vec<u8>,
    /// Join and sync requests whose answers no client has taken yet.
    outstanding: HashSet<ReplyId>,
    leaders: HashMap<i32, String>,
    /// What each generation's leader assigned.
    assigned: HashMap<i32, BTreeMap<String, Vec<u8>>>,
    last_generation: i32,
}

fn code(error: ErrorCode) -> i16 {
    error.code()
}

impl Sim {
    fn new(versions: &[i16]) -> Sim {
        Sim {
            h: Harness::new(config()),
            clients: versions
                .iter()
                .map(|&join_version| Client { member_id: String::new(), join_version, state: State::Idle })
                .collect(),
            metadata: subscription(&["t1"]).to_vec(),
            outstanding: HashSet::new(),
            leaders: HashMap::new(),
            assigned: HashMap::new(),
            last_generation: 0,
        }
    }

    fn take(&mut self, reply: ReplyId) -> bool {
        if self.h.answered(reply) {
            self.outstanding.remove(&reply);
            true
        } else {
            false
        }
    }

    fn step(&mut self, index: usize) {
        let version = self.clients[index].join_version;
        match self.clients[index].state.clone() {
            State::Gone => {}
            State::Idle => {
                let member_id = self.clients[index].member_id.clone();
                let request = join_request(G, &member_id, protocols(&[("range", &self.metadata)]));
                let reply = self.h.send_join(version, "client", request);
                self.outstanding.insert(reply);
                self.clients[index].state = State::Joining { reply };
            }
            State::Joining { reply } => {
                if !self.take(reply) {
                    return;
                }
                let response = self.h.join_response(reply);
                let client = &mut self.clients[index];
                match ErrorCode::from_code(response.error_code) {
                    Some(ErrorCode::None) => {}
                    Some(ErrorCode::MemberIdRequired) => {
                        client.member_id = response.member_id;
                        client.state = State::Idle;
                        return;
                    }
                    Some(ErrorCode::UnknownMemberId) => {
                        client.member_id.clear();
                        client.state = State::Idle;
                        return;
                    }
                    Some(ErrorCode::RebalanceInProgress) => {
                        client.state = State::Idle;
                        return;
                    }
                    other => panic!("unexpected JoinGroup error {other:?}: {response:?}"),
                }
                let generation = response.generation_id;
                client.member_id = response.member_id.clone();
                let leader = self.leaders.entry(generation).or_insert_with(|| response.leader.clone());
                assert_eq!(*leader, response.leader, "two leaders in generation {generation}");
                let assignments: Vec<(String, Vec<u8>)> = if response.leader == response.member_id {
                    let plan: BTreeMap<String, Vec<u8>> = response
                        .members
                        .iter()
                        .map(|member| (member.member_id.clone(), format!("{generation}:{}", member.member_id).into()))
                        .collect();
                    assert!(plan.contains_key(&response.member_id), "the leader is among the members");
                    self.assigned.insert(generation, plan.clone());
                    plan.into_iter().collect()
                } else {
                    assert!(response.members.is_empty(), "only the leader gets the member list");
                    Vec::new()
                };
                let borrowed: Vec<(&str, &[u8])> =
                    assignments.iter().map(|(member, bytes)| (member.as_str(), bytes.as_slice())).collect();
                let sync_version = version.min(5);
                let member_id = response.member_id.clone();
                let reply = self.h.sync(sync_version, G, &member_id, generation, &borrowed);
                self.outstanding.insert(reply);
                self.clients[index].state = State::Syncing { reply, generation };
            }
            State::Syncing { reply, generation } => {
                if !self.take(reply) {
                    return;
                }
                let response = self.h.sync_response(reply);
                let client = &mut self.clients[index];
                match ErrorCode::from_code(response.error_code) {
                    Some(ErrorCode::None) => {
                        let plan = self.assigned.get(&generation).expect("the leader synced this generation");
                        let expected = plan.get(&client.member_id).cloned().unwrap_or_default();
                        assert_eq!(response.assignment.to_vec(), expected, "assignment of {}", client.member_id);
                        client.state = State::Stable { generation };
                    }
                    Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => client.state = State::Idle,
                    Some(ErrorCode::UnknownMemberId) => {
                        client.member_id.clear();
                        client.state = State::Idle;
                    }
                    other => panic!("unexpected SyncGroup error {other:?}"),
                }
            }
            State::Stable { generation } => {
                let member_id = self.clients[index].member_id.clone();
                let error = self.h.heartbeat_with(
                    version.min(4),
                    HeartbeatRequest { group_id: G.into(), generation_id: generation, member_id, ..Default::default() },
                );
                let client = &mut self.clients[index];
                match ErrorCode::from_code(error) {
                    Some(ErrorCode::None) => {}
                    Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => client.state = State::Idle,
                    Some(ErrorCode::UnknownMemberId) => {
                        client.member_id.clear();
                        client.state = State::Idle;
                    }
                    other => panic!("unexpected Heartbeat error {other:?}"),
                }
            }
        }
    }

    fn leave(&mut self, index: usize) {
        let client = &self.clients[index];
        if matches!(client.state, State::Gone) {
            return;
        }
        if !client.member_id.is_empty() {
            let version = client.join_version.min(5);
            let member_id = client.member_id.clone();
            let response = if version >= 3 {
                let members = vec![MemberIdentity { member_id: member_id.clone(), ..Default::default() }];
                self.h.leave(version, G, "", members)
            } else {
                self.h.leave(version, G, &member_id, Vec::new())
            };
            let member_error = response.members.first().map(|member| member.error_code).unwrap_or(0);
            assert!(
                [0, code(ErrorCode::UnknownMemberId)].contains(&response.error_code)
                    && [0, code(ErrorCode::UnknownMemberId)].contains(&member_error),
                "unexpected LeaveGroup answer {response:?}"
            );
        }
        self.clients[index].state = State::Gone;
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Step(index) => self.step(index),
            Op::Leave(index) => self.leave(index),
            Op::Crash(index) => self.clients[index].state = State::Gone,
            Op::Restart(index) => {
                if matches!(self.clients[index].state, State::Gone) {
                    self.clients[index].member_id.clear();
                    self.clients[index].state = State::Idle;
                }
            }
            Op::Advance(ms) => self.h.advance(i64::from(ms)),
        }
        if let Some(crate::shard::Group::Classic(group)) = self.h.shard.group(G) {
            assert!(group.generation_id() >= self.last_generation, "the generation went back");
            self.last_generation = group.generation_id();
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.clients.len()).filter(|&index| !matches!(self.clients[index].state, State::Gone)).collect()
    }

    /// Lets the live clients run with heartbeats well inside their session until
    /// they all sit in one stable generation.
    fn converge(&mut self) {
        let live = self.live();
        for _ in 0..2_000 {
            for &index in &live {
                self.step(index);
            }
            self.h.advance(100);
            let generations: HashSet<i32> = live
                .iter()
                .filter_map(|&index| match self.clients[index].state {
                    State::Stable { generation } => Some(generation),
                    _ => None,
                })
                .collect();
            let all_stable = live.iter().all(|&index| matches!(self.clients[index].state, State::Stable { .. }));
            if all_stable && generations.len() == 1 {
                let group = self.h.classic(G);
                if group.state() == ClassicGroupState::Stable && group.members().len() == live.len() {
                    assert_eq!(generations.into_iter().next(), Some(group.generation_id()));
                    return;
                }
            }
        }
        panic!("the live clients {live:?} did not converge: {:?}", self.h.shard.group(G));
    }
}

/// 64 cases in CI; `GREGOR_SIM_CASES=1500` for a longer run.
fn sim_cases() -> u32 {
    std::env::var("GREGOR_SIM_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: sim_cases(), ..ProptestConfig::default() })]

    #[test]
    fn classic_group_simulation(
        versions in proptest::collection::vec(0i16..=9, CLIENTS),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut sim = Sim::new(&versions);
        for op in ops {
            sim.apply(op);
        }
        if sim.h.shard.group(G).is_some() && !sim.live().is_empty() {
            sim.converge();
        }
        for index in 0..CLIENTS {
            sim.leave(index);
        }
        sim.h.advance(120_000);
        let unanswered: Vec<ReplyId> =
            sim.outstanding.iter().copied().filter(|reply| !sim.h.answered(*reply)).collect();
        prop_assert!(unanswered.is_empty(), "requests never answered: {unanswered:?}");
        if let Some(crate::shard::Group::Classic(group)) = sim.h.shard.group(G) {
            prop_assert_eq!(group.state(), ClassicGroupState::Empty);
            let generation = group.generation_id();
            let mut reloaded = GroupCoordinatorShard::new(7, config());
            for record in sim.h.log.clone() {
                reloaded.replay(record);
            }
            reloaded.finish_load(sim.h.now);
            match reloaded.group(G) {
                Some(crate::shard::Group::Classic(group)) => {
                    prop_assert_eq!(group.state(), ClassicGroupState::Empty);
                    prop_assert_eq!(group.generation_id(), generation);
                }
                other => prop_assert!(false, "reloaded group: {:?}", other),
            }
        }
    }
}
