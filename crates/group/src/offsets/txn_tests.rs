//! TxnOffsetCommit and pending transactional offsets (KIP-98, KIP-447), driven like the
//! broker does: transactional records are replayed as pending for their producer, and
//! markers commit or abort them.

use super::OffsetStore;
use crate::classic::testkit::{config, protocols, subscription, Harness};
use crate::classic::ClassicGroupState;
use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use gregor_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use gregor_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponse;
use gregor_protocol::{ErrorCode, ResponseBody};

const G: &str = "g";
const UNSTABLE: i16 = 88;

/// A TxnOffsetCommit of producer `pid` (epoch 0) for `(topic, partition, offset)`.
fn txn_request(pid: i64, commits: &[(&str, i32, i64)]) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in commits {
        let entry = TxnOffsetCommitRequestPartition {
            partition_index: *partition,
            committed_offset: *offset,
            committed_leader_epoch: 3,
            committed_metadata: Some(format!("m{offset}")),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == *topic) {
            Some(existing) => existing.partitions.push(entry),
            None => topics.push(TxnOffsetCommitRequestTopic {
                name: topic.to_string(),
                partitions: vec![entry],
                ..Default::default()
            }),
        }
    }
    TxnOffsetCommitRequest {
        transactional_id: format!("txn-{pid}"),
        group_id: G.to_string(),
        producer_id: pid,
        producer_epoch: 0,
        topics,
        ..Default::default()
    }
}

/// Sends a TxnOffsetCommit at `version`; the per-partition error codes.
fn txn_commit_at(h: &mut Harness, version: i16, request: TxnOffsetCommitRequest) -> Vec<Vec<i16>> {
    let ctx = h.ctx(version, "producer");
    let (pid, epoch) = (request.producer_id, request.producer_epoch);
    let effects = h.shard.txn_offset_commit(&ctx, request, &h.topics);
    assert_eq!(effects.transactional, Some((pid, epoch)), "a transactional decision");
    h.apply(effects);
    match h.take(ctx.reply) {
        ResponseBody::TxnOffsetCommit(TxnOffsetCommitResponse { topics, .. }) => topics
            .into_iter()
            .map(|topic| topic.partitions.into_iter().map(|partition| partition.error_code).collect())
            .collect(),
        other => panic!("not a TxnOffsetCommit answer: {other:?}"),
    }
}

fn txn_commit(h: &mut Harness, pid: i64, commits: &[(&str, i32, i64)]) {
    let errors = txn_commit_at(h, 3, txn_request(pid, commits));
    assert!(errors.iter().flatten().all(|code| *code == 0), "{errors:?}");
}

fn plain_commit(h: &mut Harness, topic: &str, partition: i32, offset: i64) {
    let ctx = h.ctx(8, "consumer");
    let request = OffsetCommitRequest {
        group_id: G.to_string(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: topic.to_string(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let effects = h.shard.offset_commit(&ctx, request, &h.topics);
    assert_eq!(effects.transactional, None);
    h.apply(effects);
    h.take(ctx.reply);
}

fn fetch(h: &mut Harness, require_stable: bool, topics: Option<&[(&str, &[i32])]>) -> OffsetFetchResponseGroup {
    let ctx = h.ctx(8, "consumer");
    let request = OffsetFetchRequestGroup {
        group_id: G.to_string(),
        topics: topics.map(|topics| {
            topics
                .iter()
                .map(|(name, partitions)| OffsetFetchRequestTopics {
                    name: name.to_string(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    h.shard.offset_fetch_group(&ctx, request, require_stable, &h.topics)
}

/// (offset, leader epoch, metadata, error) of one partition, asked for by name.
fn fetch_one(h: &mut Harness, require_stable: bool, topic: &str, partition: i32) -> (i64, i32, String, i16) {
    let response = fetch(h, require_stable, Some(&[(topic, &[partition])]));
    assert_eq!(response.error_code, 0);
    let p = &response.topics[0].partitions[0];
    (p.committed_offset, p.committed_leader_epoch, p.metadata.clone().unwrap_or_default(), p.error_code)
}

fn committed(offset: i64) -> (i64, i32, String, i16) {
    (offset, 3, format!("m{offset}"), 0)
}

fn nothing() -> (i64, i32, String, i16) {
    (-1, -1, String::new(), 0)
}

fn unstable() -> (i64, i32, String, i16) {
    (-1, -1, String::new(), UNSTABLE)
}

/// A comparable picture of the offset store: committed and pending offsets, open
/// transactions by group.
fn picture(store: &OffsetStore) -> String {
    let committed: std::collections::BTreeMap<_, _> = store.by_group.iter().collect();
    let pending: std::collections::BTreeMap<_, std::collections::BTreeMap<_, _>> =
        store.pending.iter().map(|(producer, groups)| (producer, groups.iter().collect())).collect();
    let open: std::collections::BTreeMap<_, _> = store.open_by_group.iter().collect();
    format!("{committed:?} {pending:?} {open:?}")
}

#[test]
fn pending_offsets_are_invisible_until_the_commit_marker() {
    let mut h = Harness::new(config());
    txn_commit(&mut h, 100, &[("t1", 0, 10), ("t2", 1, 20)]);
    // The group was created, as a simple group, by the replayed record.
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    assert_eq!(fetch_one(&mut h, false, "t1", 0), nothing());
    assert!(fetch(&mut h, false, None).topics.is_empty(), "nothing committed yet");
    assert_eq!(fetch_one(&mut h, true, "t1", 0), unstable());
    assert_eq!(fetch_one(&mut h, true, "t2", 1), unstable());
    // Another partition is stable.
    assert_eq!(fetch_one(&mut h, true, "t2", 0), nothing());
    assert_eq!(h.shard.offsets.pending(100, G, "t1", 0).map(|o| o.offset), Some(10));
    assert!(h.shard.offsets.get(G, "t1", 0).is_none());

    h.end_txn(100, true);
    assert_eq!(fetch_one(&mut h, false, "t1", 0), committed(10));
    assert_eq!(fetch_one(&mut h, true, "t1", 0), committed(10));
    assert_eq!(fetch_one(&mut h, true, "t2", 1), committed(20));
    let stored = h.shard.offsets.get(G, "t2", 1).expect("committed").clone();
    assert_eq!((stored.commit_timestamp_ms, stored.expire_timestamp_ms), (h.now, None));
    assert!(h.shard.offsets.pending_producers().is_empty());
    assert!(!h.shard.offsets.has_open_transactions(G));
    // A second marker (a retried WriteTxnMarkers) changes nothing.
    h.end_txn(100, false);
    assert_eq!(fetch_one(&mut h, true, "t1", 0), committed(10));
}

#[test]
fn an_abort_drops_pending_offsets_and_keeps_the_committed_ones() {
    let mut h = Harness::new(config());
    plain_commit(&mut h, "t1", 0, 5);
    txn_commit(&mut h, 7, &[("t1", 0, 10), ("t1", 1, 11)]);
    assert_eq!(fetch_one(&mut h, false, "t1", 0), (5, -1, String::new(), 0));
    assert_eq!(fetch_one(&mut h, true, "t1", 0), unstable());
    // Fetch-all lists committed partitions only, each unstable when pending.
    let all = fetch(&mut h, true, None);
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions.len(), 1);
    assert_eq!(all.topics[0].partitions[0].error_code, UNSTABLE);
    h.end_txn(7, false);
    assert_eq!(fetch_one(&mut h, true, "t1", 0), (5, -1, String::new(), 0));
    assert_eq!(fetch_one(&mut h, true, "t1", 1), nothing());
    assert!(h.shard.offsets.pending_producers().is_empty());
    // A commit marker after the abort finds nothing to commit.
    h.end_txn(7, true);
    assert_eq!(fetch_one(&mut h, true, "t1", 1), nothing());
}

#[test]
fn two_producers_on_one_group() {
    let mut h = Harness::new(config());
    txn_commit(&mut h, 1, &[("t1", 0, 10)]);
    txn_commit(&mut h, 2, &[("t1", 1, 20), ("t1", 0, 15)]);
    assert_eq!(h.shard.offsets.pending_producers(), vec![1, 2]);
    h.end_txn(2, true);
    assert_eq!(fetch_one(&mut h, false, "t1", 0), committed(15));
    assert_eq!(fetch_one(&mut h, true, "t1", 1), committed(20));
    // Producer 1 still has t1-0 pending.
    assert_eq!(fetch_one(&mut h, true, "t1", 0), unstable());
    assert!(h.shard.offsets.has_open_transactions(G));
    h.end_txn(1, false);
    assert_eq!(fetch_one(&mut h, true, "t1", 0), committed(15));
    assert!(!h.shard.offsets.has_open_transactions(G));
}

#[test]
fn the_latest_record_wins_between_plain_and_transactional_commits() {
    // Transactional commit first, a plain commit after it, then the COMMIT marker:
    // the plain commit came later in the log and stays.
    let mut h = Harness::new(config());
    txn_commit(&mut h, 1, &[("t1", 0, 10)]);
    plain_commit(&mut h, "t1", 0, 20);
    h.end_txn(1, true);
    assert_eq!(fetch_one(&mut h, true, "t1", 0), (20, -1, String::new(), 0));
    // A plain commit first, then the transaction's: the transaction's wins.
    plain_commit(&mut h, "t1", 1, 30);
    txn_commit(&mut h, 2, &[("t1", 1, 40)]);
    h.end_txn(2, true);
    assert_eq!(fetch_one(&mut h, true, "t1", 1), committed(40));
    assert_eq!(picture(&h.reload().offsets), picture(&h.shard.offsets));
}

#[test]
fn reloading_the_log_rebuilds_committed_and_pending_offsets() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 1, &["t1"]);
    plain_commit(&mut h, "t3", 0, 1);
    let mut request = txn_request(1, &[("t1", 0, 10), ("t2", 0, 11)]);
    request.generation_id = generation;
    request.member_id = members[0].clone();
    assert_eq!(txn_commit_at(&mut h, 3, request), vec![vec![0], vec![0]]);
    txn_commit(&mut h, 2, &[("t1", 1, 20)]);
    txn_commit(&mut h, 3, &[("t1", 2, 30)]);
    h.end_txn(2, true);
    h.end_txn(3, false);
    // Producer 1 is still open.
    let fresh = h.reload();
    assert_eq!(picture(&fresh.offsets), picture(&h.shard.offsets));
    assert_eq!(fresh.offsets.pending_producers(), vec![1]);
    assert_eq!(fresh.offsets.get(G, "t1", 1).map(|o| o.offset), Some(20));
    assert!(fresh.offsets.get(G, "t1", 2).is_none());
    assert!(fresh.offsets.has_pending(G, "t1", 0));
    // The marker arrives after the restart: both end in the same state.
    h.end_txn(1, true);
    let mut fresh = fresh;
    fresh.replay_end_transaction_marker(1, true);
    assert_eq!(picture(&fresh.offsets), picture(&h.shard.offsets));
    assert_eq!(picture(&h.reload().offsets), picture(&h.shard.offsets));
    assert_eq!(fetch_one(&mut h, true, "t2", 0), committed(11));
}

#[test]
fn txn_offset_commit_validation() {
    let mut h = Harness::new(GroupConfig { offset_metadata_max_bytes: 4, ..config() });
    // Unknown topic and partition; metadata too large.
    let mut request = txn_request(1, &[("t1", 0, 1), ("t1", 9, 1), ("missing", 0, 1)]);
    request.topics[0].partitions[0].committed_metadata = Some("too long".into());
    assert_eq!(
        txn_commit_at(&mut h, 3, request),
        vec![
            vec![ErrorCode::OffsetMetadataTooLarge.code(), ErrorCode::UnknownTopicOrPartition.code()],
            vec![ErrorCode::UnknownTopicOrPartition.code()]
        ]
    );
    assert!(h.shard.group(G).is_none(), "nothing was written");
    // An empty group id.
    let mut request = txn_request(1, &[("t1", 0, 1)]);
    request.group_id.clear();
    assert_eq!(txn_commit_at(&mut h, 0, request), vec![vec![ErrorCode::InvalidGroupId.code()]]);
    // A group that does not exist, with a generation.
    let mut request = txn_request(1, &[("t1", 0, 1)]);
    request.generation_id = 4;
    request.member_id = "m".into();
    assert_eq!(txn_commit_at(&mut h, 3, request), vec![vec![ErrorCode::IllegalGeneration.code()]]);
    assert!(h.shard.offsets.pending_producers().is_empty());
}

#[test]
fn classic_members_are_fenced_by_kip_447_fields() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let with = |generation: i32, member: &str, instance: Option<&str>| {
        let mut request = txn_request(1, &[("t1", 0, 5)]);
        request.generation_id = generation;
        request.member_id = member.to_string();
        request.group_instance_id = instance.map(str::to_string);
        request
    };
    assert_eq!(txn_commit_at(&mut h, 3, with(generation, &members[1], None)), vec![vec![0]]);
    assert_eq!(
        txn_commit_at(&mut h, 3, with(generation - 1, &members[1], None)),
        vec![vec![ErrorCode::IllegalGeneration.code()]]
    );
    assert_eq!(
        txn_commit_at(&mut h, 3, with(generation, "stranger", None)),
        vec![vec![ErrorCode::UnknownMemberId.code()]]
    );
    // v0-v2 carry no group fields: accepted on a group with members (unlike OffsetCommit).
    assert_eq!(txn_commit_at(&mut h, 2, txn_request(2, &[("t1", 1, 6)])), vec![vec![0]]);
    // CompletingRebalance does not refuse transactional commits.
    let metadata = subscription(&["t1"]);
    let r0 = h.join(5, G, &members[0], protocols(&[("range", &metadata)]));
    let r1 = h.join(5, G, &members[1], protocols(&[("range", &metadata)]));
    let next = h.join_response(r0).generation_id;
    h.join_response(r1);
    assert_eq!(h.classic(G).state(), ClassicGroupState::CompletingRebalance);
    assert_eq!(txn_commit_at(&mut h, 3, with(next, &members[1], None)), vec![vec![0]]);
    assert!(h.shard.offsets.has_pending(G, "t1", 0));
}

#[test]
fn static_members_are_fenced_by_instance_id() {
    let mut h = Harness::new(config());
    let mut join = crate::classic::testkit::join_request(G, "", protocols(&[("range", &subscription(&["t1"]))]));
    join.group_instance_id = Some("instance".into());
    let reply = h.send_join(5, "client", join);
    h.advance(0);
    let response = h.join_response(reply);
    let sync = h.sync(5, G, &response.member_id, response.generation_id, &[]);
    h.sync_response(sync);
    let mut request = txn_request(1, &[("t1", 0, 1)]);
    request.generation_id = response.generation_id;
    request.member_id = "zombie".into();
    request.group_instance_id = Some("instance".into());
    assert_eq!(txn_commit_at(&mut h, 3, request.clone()), vec![vec![ErrorCode::FencedInstanceId.code()]]);
    request.member_id = response.member_id.clone();
    assert_eq!(txn_commit_at(&mut h, 3, request), vec![vec![0]]);
}

fn delete(h: &mut Harness, topic: &str, partitions: &[i32]) -> Vec<i16> {
    let ctx = h.ctx(0, "admin");
    let request = OffsetDeleteRequest {
        group_id: G.to_string(),
        topics: vec![OffsetDeleteRequestTopic {
            name: topic.to_string(),
            partitions: partitions
                .iter()
                .map(|index| OffsetDeleteRequestPartition { partition_index: *index, ..Default::default() })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let effects = h.shard.offset_delete(&ctx, request);
    h.apply(effects);
    match h.take(ctx.reply) {
        ResponseBody::OffsetDelete(response) => {
            assert_eq!(response.error_code, 0);
            response.topics[0].partitions.iter().map(|p| p.error_code).collect()
        }
        other => panic!("not an OffsetDelete answer: {other:?}"),
    }
}

#[test]
fn offset_delete_drops_pending_offsets_too() {
    let mut h = Harness::new(config());
    txn_commit(&mut h, 1, &[("t1", 0, 10), ("t1", 1, 11)]);
    let before = h.log.len();
    assert_eq!(delete(&mut h, "t1", &[0, 2]), vec![0, 0]);
    // One tombstone: t1-0 had a pending offset, t1-2 nothing.
    assert_eq!(h.log.len(), before + 1);
    assert!(!h.shard.offsets.has_pending(G, "t1", 0));
    assert!(h.shard.offsets.has_pending(G, "t1", 1));
    h.end_txn(1, true);
    assert_eq!(fetch_one(&mut h, true, "t1", 0), nothing());
    assert_eq!(fetch_one(&mut h, true, "t1", 1), committed(11));
    assert_eq!(picture(&h.reload().offsets), picture(&h.shard.offsets));
}

#[test]
fn deleting_a_group_tombstones_its_pending_offsets() {
    let mut h = Harness::new(config());
    plain_commit(&mut h, "t1", 0, 1);
    txn_commit(&mut h, 1, &[("t1", 0, 10), ("t2", 0, 20)]);
    let ctx = h.ctx(2, "admin");
    let (records, error) = h.shard.delete_group(&ctx, G);
    assert_eq!(error, ErrorCode::None);
    let offsets: Vec<(String, i32)> = records
        .iter()
        .filter_map(|record| match record {
            CoordinatorRecord::OffsetCommit { key, value: None } => Some((key.topic.clone(), key.partition)),
            _ => None,
        })
        .collect();
    assert_eq!(offsets, vec![("t1".to_string(), 0), ("t2".to_string(), 0)], "no tombstone twice");
    h.apply(crate::shard::Effects { records, ..Default::default() });
    assert!(h.shard.group(G).is_none());
    assert!(!h.shard.offsets.has_pending(G, "t1", 0) && !h.shard.offsets.has_pending(G, "t2", 0));
    // The commit marker then brings nothing back.
    h.end_txn(1, true);
    assert!(h.shard.group(G).is_none());
    assert!(h.shard.offsets.group(G).is_none());
}

#[test]
fn expiry_waits_for_open_transactions() {
    let retention = 60_000;
    let mut h = Harness::new(GroupConfig { offsets_retention_ms: retention, ..config() });
    plain_commit(&mut h, "t1", 0, 1);
    plain_commit(&mut h, "t1", 1, 2);
    txn_commit(&mut h, 1, &[("t1", 0, 10)]);
    txn_commit(&mut h, 2, &[("t3", 0, 30)]);
    h.advance(retention);
    let effects = h.shard.expire_offsets(h.now);
    // Only t1-1 expires: t1-0 has a pending offset, and the group has open transactions.
    assert_eq!(effects.records.len(), 1, "{:?}", effects.records);
    h.apply(effects);
    assert!(h.shard.offsets.get(G, "t1", 0).is_some());
    h.end_txn(1, false);
    h.end_txn(2, true);
    // t3-0 counts from its TxnOffsetCommit's time: t1-0 and t3-0 expire, then the group.
    let effects = h.shard.expire_offsets(h.now);
    assert_eq!(effects.records.len(), 3, "{:?}", effects.records);
    assert!(matches!(effects.records.last(), Some(CoordinatorRecord::GroupMetadata { value: None, .. })));
    h.apply(effects);
    assert!(h.shard.offsets.group(G).is_none());
    assert!(h.shard.group(G).is_none());
}

#[test]
fn a_group_with_only_pending_offsets_is_not_expired() {
    let mut h = Harness::new(GroupConfig { offsets_retention_ms: 1_000, ..config() });
    txn_commit(&mut h, 1, &[("t1", 0, 10)]);
    h.advance(10_000);
    assert!(h.shard.expire_offsets(h.now).records.is_empty());
    h.end_txn(1, false);
    let effects = h.shard.expire_offsets(h.now);
    assert!(matches!(effects.records.as_slice(), [CoordinatorRecord::GroupMetadata { value: None, .. }]));
}
