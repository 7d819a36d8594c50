//! Wire-level helpers for the group coordinator tests: a raw connection with its
//! own correlation ids, a broker fixture with a topic and a warm coordinator, and
//! builders for the classic-protocol requests at any version.

use crate::raw::RawConn;
use crate::rdk;
use crate::BrokerProcess;
use anyhow::{ensure, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopicPartition,
};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use gregor_protocol::{ApiKey, ErrorCode, Message as _, RequestBody, ResponseBody, Uuid};
use std::time::{Duration, Instant};

pub const TOPIC: &str = "raw-groups";
pub const TOPIC_PARTITIONS: i32 = 3;
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;

/// Extracts one response variant or fails with what came instead.
#[macro_export]
macro_rules! expect_response {
    ($body:expr, $variant:ident) => {
        match $body {
            gregor_protocol::ResponseBody::$variant(response) => response,
            other => anyhow::bail!("expected a {} response, got {other:?}", stringify!($variant)),
        }
    };
}

pub fn name(code: i16) -> String {
    match ErrorCode::from_code(code) {
        Some(error) => format!("{} ({code})", error.name()),
        None => format!("unknown error code {code}"),
    }
}

/// Fails unless `got` is `want`, naming both.
pub fn check_code(got: i16, want: ErrorCode, what: &str) -> Result<()> {
    ensure!(got == want.code(), "{what}: got {}, expected {}", name(got), name(want.code()));
    Ok(())
}

/// A raw connection with its own correlation ids.
pub struct Conn {
    pub conn: RawConn,
    pub correlation: i32,
}

impl Conn {
    pub fn new(bootstrap: &str) -> Result<Conn> {
        Ok(Conn { conn: RawConn::connect(bootstrap)?, correlation: 0 })
    }

    pub fn call(&mut self, body: impl Into<RequestBody>, version: i16) -> Result<ResponseBody> {
        let body = body.into();
        let key = body.api_key();
        self.correlation += 1;
        self.conn.round_trip(body, version, self.correlation).with_context(|| format!("{key:?} v{version}"))
    }

    /// Sends without reading (for a request the broker parks, like a JoinGroup
    /// that waits for the rest of the group).
    pub fn send(&mut self, body: impl Into<RequestBody>, version: i16) -> Result<()> {
        self.correlation += 1;
        self.conn.send(body, version, self.correlation)
    }

    pub fn receive(&mut self, key: ApiKey, version: i16, timeout: Duration) -> Result<ResponseBody> {
        let (header, body) = self.conn.read_response(key, version, timeout)?;
        ensure!(header.correlation_id == self.correlation, "correlation id {}", header.correlation_id);
        Ok(body)
    }
}

pub struct Fixture {
    pub broker: BrokerProcess,
    pub conn: Conn,
    pub topic_id: Uuid,
}

impl Fixture {
    pub fn start() -> Result<Fixture> {
        let broker = BrokerProcess::start(&[
            ("group.initial.rebalance.delay.ms", "0"),
            ("group.consumer.min.session.timeout.ms", "5000"),
            ("group.consumer.session.timeout.ms", "10000"),
            ("group.consumer.min.heartbeat.interval.ms", "500"),
            ("group.consumer.heartbeat.interval.ms", "1000"),
            ("offsets.topic.num.partitions", "10"),
        ])?;
        let setup = (|| -> Result<(Conn, Uuid)> {
            rdk::create_topic(&broker.bootstrap(), TOPIC, TOPIC_PARTITIONS, &[])?;
            let mut conn = Conn::new(&broker.bootstrap())?;
            wait_for_coordinator(&mut conn, "warm-up")?;
            let metadata = expect_response!(
                conn.call(
                    MetadataRequest {
                        topics: Some(vec![MetadataRequestTopic { name: Some(TOPIC.into()), ..Default::default() }]),
                        ..Default::default()
                    },
                    12
                )?,
                Metadata
            );
            let topic = metadata.topics.first().context("no topic in Metadata")?;
            ensure!(topic.topic_id != Uuid::ZERO, "{TOPIC} has no topic id");
            Ok((conn, topic.topic_id))
        })();
        let (conn, topic_id) = broker.with_diag(setup)?;
        Ok(Fixture { broker, conn, topic_id })
    }

    pub fn run(self, name: &str, test: impl FnOnce(&mut Fixture) -> Result<()>) -> Result<()> {
        let started = Instant::now();
        let mut fixture = self;
        let result = test(&mut fixture);
        eprintln!("{name} took {:?}", started.elapsed());
        fixture.broker.with_diag(result)
    }
}

/// FindCoordinator until the coordinator is there: the first request creates
/// `__consumer_offsets`, and Kafka answers COORDINATOR_NOT_AVAILABLE meanwhile.
pub fn wait_for_coordinator(conn: &mut Conn, key: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = FindCoordinatorRequest { key: key.into(), ..Default::default() };
        let response = expect_response!(conn.call(request, 3)?, FindCoordinator);
        if response.error_code == 0 {
            return Ok(());
        }
        ensure!(
            [ErrorCode::CoordinatorNotAvailable.code(), ErrorCode::CoordinatorLoadInProgress.code()]
                .contains(&response.error_code),
            "FindCoordinator: {}",
            name(response.error_code)
        );
        ensure!(Instant::now() < deadline, "no coordinator within 30 s: {}", name(response.error_code));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the coordinator serves every group of `groups`, as clients do:
/// FindCoordinator for each, then ConsumerGroupDescribe until no group answers a
/// retriable coordinator error (the shards of a just-created
/// `__consumer_offsets` load one by one).
pub fn ready(conn: &mut Conn, groups: &[&str]) -> Result<()> {
    for group in groups {
        wait_for_coordinator(conn, group)?;
    }
    let retriable = [
        ErrorCode::CoordinatorNotAvailable.code(),
        ErrorCode::CoordinatorLoadInProgress.code(),
        ErrorCode::NotCoordinator.code(),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // ConsumerGroupDescribe answers GROUP_ID_NOT_FOUND for a group it does
        // not know (or one of another type) once the group's shard is loaded.
        let request = ConsumerGroupDescribeRequest {
            group_ids: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        let response = expect_response!(conn.call(request, 0)?, ConsumerGroupDescribe);
        let waiting: Vec<_> = response.groups.iter().filter(|g| retriable.contains(&g.error_code)).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "groups still unavailable after 30 s: {:?}",
            waiting.iter().map(|g| (&g.group_id, name(g.error_code))).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ConsumerProtocolSubscription` v0 with its version prefix, as clients send it.
pub fn subscription() -> Result<Bytes> {
    let body = ConsumerProtocolSubscription { topics: vec![TOPIC.into()], ..Default::default() };
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.extend_from_slice(&body.encode_to_bytes(0)?);
    Ok(bytes.freeze())
}

pub fn assignment(partitions: &[i32]) -> Result<Bytes> {
    let body = ConsumerProtocolAssignment {
        assigned_partitions: vec![AssignedTopicPartition {
            topic: TOPIC.into(),
            partitions: partitions.to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut bytes = BytesMut::new();
    bytes.put_i16(0);
    bytes.extend_from_slice(&body.encode_to_bytes(0)?);
    Ok(bytes.freeze())
}

pub fn join_request(group: &str, member_id: &str) -> Result<JoinGroupRequest> {
    Ok(JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription()?,
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// JoinGroup v0 needs its rebalance timeout left at the default (v0 has none).
pub fn join_request_at(group: &str, member_id: &str, version: i16) -> Result<JoinGroupRequest> {
    let mut request = join_request(group, member_id)?;
    if version == 0 {
        request.rebalance_timeout_ms = -1;
    }
    Ok(request)
}

/// The SyncGroup, Heartbeat and LeaveGroup versions used with a JoinGroup
/// version, spread so every version of each is used at least once.
pub fn companions(join_version: i16) -> (i16, i16, i16) {
    match join_version {
        0 => (0, 0, 0),
        1 => (0, 1, 0),
        2 => (1, 1, 1),
        3 => (1, 2, 1),
        4 => (2, 2, 2),
        5 => (3, 3, 3),
        6 => (4, 4, 4),
        7 => (4, 4, 4),
        8 => (5, 4, 5),
        _ => (5, 4, 5),
    }
}

pub fn sync_request(group: &str, generation: i32, member_id: &str, assignments: &[(&str, Bytes)]) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        assignments: assignments
            .iter()
            .map(|(member, bytes)| SyncGroupRequestAssignment {
                member_id: member.to_string(),
                assignment: bytes.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// SyncGroup v5 carries the protocol type and name.
pub fn sync_at(mut request: SyncGroupRequest, version: i16) -> SyncGroupRequest {
    if version >= 5 {
        request.protocol_type = Some("consumer".into());
        request.protocol_name = Some("range".into());
    }
    request
}

pub fn heartbeat(group: &str, generation: i32, member_id: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        ..Default::default()
    }
}

pub fn leave(group: &str, member_id: &str, version: i16) -> LeaveGroupRequest {
    if version >= 3 {
        LeaveGroupRequest {
            group_id: group.into(),
            members: vec![MemberIdentity { member_id: member_id.into(), ..Default::default() }],
            ..Default::default()
        }
    } else {
        LeaveGroupRequest { group_id: group.into(), member_id: member_id.into(), ..Default::default() }
    }
}

/// Joins a new group at `version` (with the MEMBER_ID_REQUIRED round at v4+),
/// syncs as its leader, and returns (member id, generation).
pub fn join_alone(conn: &mut Conn, group: &str, version: i16) -> Result<(String, i32)> {
    let first = expect_response!(conn.call(join_request_at(group, "", version)?, version)?, JoinGroup);
    let member_id = if version >= 4 {
        check_code(first.error_code, ErrorCode::MemberIdRequired, &format!("JoinGroup v{version} without member id"))?;
        ensure!(!first.member_id.is_empty(), "MEMBER_ID_REQUIRED without a member id (v{version})");
        ensure!(first.generation_id == -1, "MEMBER_ID_REQUIRED with generation {}", first.generation_id);
        let second =
            expect_response!(conn.call(join_request_at(group, &first.member_id, version)?, version)?, JoinGroup);
        check_code(second.error_code, ErrorCode::None, &format!("JoinGroup v{version} with the given member id"))?;
        ensure!(second.member_id == first.member_id, "rejoined as {}, given {}", second.member_id, first.member_id);
        check_joined(&second, version)?;
        second
    } else {
        check_code(first.error_code, ErrorCode::None, &format!("JoinGroup v{version}"))?;
        ensure!(!first.member_id.is_empty(), "JoinGroup v{version} assigned no member id");
        check_joined(&first, version)?;
        first
    };
    let (sync_version, _, _) = companions(version);
    let assigned = assignment(&[0, 1, 2])?;
    let request = sync_at(
        sync_request(group, member_id.generation_id, &member_id.member_id, &[(&member_id.member_id, assigned.clone())]),
        sync_version,
    );
    let synced = expect_response!(conn.call(request, sync_version)?, SyncGroup);
    check_code(synced.error_code, ErrorCode::None, &format!("SyncGroup v{sync_version}"))?;
    ensure!(synced.assignment == assigned, "SyncGroup v{sync_version} returned {:?}", synced.assignment);
    Ok((member_id.member_id, member_id.generation_id))
}

/// A lone member's completed join: generation 1+, it leads, it is the only member.
pub fn check_joined(response: &JoinGroupResponse, version: i16) -> Result<()> {
    ensure!(response.generation_id >= 1, "JoinGroup v{version}: generation {}", response.generation_id);
    ensure!(response.leader == response.member_id, "JoinGroup v{version}: leader {:?}", response.leader);
    ensure!(
        response.protocol_name.as_deref() == Some("range"),
        "JoinGroup v{version}: protocol {:?}",
        response.protocol_name
    );
    ensure!(
        response.members.len() == 1 && response.members[0].member_id == response.member_id,
        "JoinGroup v{version}: the leader sees members {:?}",
        response.members.iter().map(|m| &m.member_id).collect::<Vec<_>>()
    );
    ensure!(response.members[0].metadata == subscription()?, "JoinGroup v{version}: member metadata changed");
    Ok(())
}
