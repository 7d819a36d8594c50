use super::harness::{code, Harness};
use crate::config::TxnConfig;
use crate::record::TxnRecord;
use crate::shard::MarkerRequest;
use crate::state::TxnState;
use gregor_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use gregor_protocol::messages::describe_transactions_response::TopicData;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::ErrorCode;

fn state(h: &Harness, id: &str) -> TxnState {
    h.shard.transaction(id).expect("known id").state
}

/// InitProducerId then one partition added: the transaction is Ongoing.
fn begin(h: &mut Harness, id: &str) -> (i64, i16) {
    let init = h.init(id, 60_000);
    assert_eq!(init.error_code, 0);
    let error = h.add_partitions(3, id, init.producer_id, init.producer_epoch, &[("t", &[0, 1])]);
    assert_eq!(error, ErrorCode::None);
    (init.producer_id, init.producer_epoch)
}

#[test]
fn init_new_id_gets_fresh_producer_id_and_epoch_0() {
    let mut h = Harness::new();
    let init = h.init("tx", 60_000);
    assert_eq!(init.error_code, 0);
    assert_eq!(init.producer_id, 1000);
    assert_eq!(init.producer_epoch, 0);
    let txn = h.shard.transaction("tx").expect("created");
    assert_eq!(txn.state, TxnState::Empty);
    assert_eq!(txn.timeout_ms, 60_000);
    assert_eq!(h.log.len(), 1);
}

#[test]
fn init_existing_id_bumps_epoch_and_keeps_producer_id() {
    let mut h = Harness::new();
    let first = h.init("tx", 60_000);
    let second = h.init("tx", 30_000);
    assert_eq!(second.producer_id, first.producer_id);
    assert_eq!(second.producer_epoch, 1);
    assert_eq!(h.shard.transaction("tx").expect("known").timeout_ms, 30_000);
}

#[test]
fn init_validates_transaction_timeout() {
    let mut h = Harness::new();
    for timeout in [0, -1, 900_001] {
        let init = h.init("tx", timeout);
        assert_eq!(init.error_code, code(ErrorCode::InvalidTransactionTimeout));
        assert_eq!((init.producer_id, init.producer_epoch), (-1, -1));
    }
    assert_eq!(h.init("tx", 900_000).error_code, 0);
    let init = h.init_with(
        4,
        InitProducerIdRequest {
            transactional_id: Some(String::new()),
            transaction_timeout_ms: 1000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    );
    assert_eq!(init.error_code, code(ErrorCode::InvalidRequest));
    assert!(h.log.len() == 1);
}

#[test]
fn init_rotates_producer_id_when_epoch_is_exhausted() {
    let mut h = Harness::new();
    let first = h.init("tx", 60_000);
    // Drive the epoch to the top by replaying a record as an old coordinator wrote it.
    let mut record = h.log.last().expect("record").clone();
    record.value.as_mut().expect("value").producer_epoch = i16::MAX - 1;
    h.shard.replay(record);
    let next = h.init("tx", 60_000);
    assert_eq!(next.error_code, 0);
    assert_ne!(next.producer_id, first.producer_id);
    assert_eq!(next.producer_epoch, 0);
    assert_eq!(h.shard.transaction("tx").expect("known").previous_producer_id, first.producer_id);
}

#[test]
fn init_with_producer_id_and_epoch_kip_360() {
    let mut h = Harness::new();
    let first = h.init("tx", 60_000);
    let recover = |h: &mut Harness, version, producer_id, producer_epoch| {
        h.init_with(
            version,
            InitProducerIdRequest {
                transactional_id: Some("tx".into()),
                transaction_timeout_ms: 60_000,
                producer_id,
                producer_epoch,
                ..Default::default()
            },
        )
    };
    // The current epoch: bumped.
    let bumped = recover(&mut h, 4, first.producer_id, 0);
    assert_eq!((bumped.error_code, bumped.producer_epoch), (0, 1));
    // A retry with the epoch before the bump (its answer was lost): the same answer.
    let retry = recover(&mut h, 4, first.producer_id, 0);
    assert_eq!((retry.error_code, retry.producer_id, retry.producer_epoch), (0, first.producer_id, 1));
    // Another producer id: fenced; v3 answers INVALID_PRODUCER_EPOCH.
    assert_eq!(recover(&mut h, 4, 999, 0).error_code, code(ErrorCode::ProducerFenced));
    assert_eq!(recover(&mut h, 3, 999, 0).error_code, code(ErrorCode::InvalidProducerEpoch));
    // A new producer (no epoch) bumps and forgets the last epoch: the old one is fenced.
    assert_eq!(h.init("tx", 60_000).producer_epoch, 2);
    assert_eq!(recover(&mut h, 4, first.producer_id, 0).error_code, code(ErrorCode::ProducerFenced));
    // Half a pair is malformed.
    assert_eq!(recover(&mut h, 4, first.producer_id, -1).error_code, code(ErrorCode::InvalidRequest));
}

#[test]
fn add_partitions_v0_to_v3_and_errors() {
    let mut h = Harness::new();
    assert_eq!(h.add_partitions(0, "tx", 1, 0, &[("t", &[0])]), ErrorCode::InvalidProducerIdMapping);
    let init = h.init("tx", 60_000);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    h.now = 500;
    assert_eq!(h.add_partitions(0, "tx", pid, epoch, &[("t", &[0])]), ErrorCode::None);
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.state, TxnState::Ongoing);
    assert_eq!(txn.start_timestamp_ms, 500);
    h.now = 900;
    assert_eq!(h.add_partitions(1, "tx", pid, epoch, &[("t", &[1]), ("u", &[2])]), ErrorCode::None);
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.partitions.len(), 3);
    assert_eq!(txn.start_timestamp_ms, 500, "start is the first add");
    // Already in the transaction: no record.
    let records = h.log.len();
    assert_eq!(h.add_partitions(3, "tx", pid, epoch, &[("t", &[0, 1])]), ErrorCode::None);
    assert_eq!(h.log.len(), records);
    assert_eq!(h.add_partitions(3, "tx", pid + 1, epoch, &[("t", &[0])]), ErrorCode::InvalidProducerIdMapping);
    assert_eq!(h.add_partitions(1, "tx", pid, epoch + 1, &[("t", &[0])]), ErrorCode::InvalidProducerEpoch);
    assert_eq!(h.add_partitions(2, "tx", pid, epoch + 1, &[("t", &[0])]), ErrorCode::ProducerFenced);
    assert_eq!(h.add_partitions(3, "", pid, epoch, &[("t", &[0])]), ErrorCode::InvalidRequest);
    // Unknown partitions: those fail, the rest are not attempted.
    let response = h.add_partitions_with(
        3,
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: "tx".into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: super::harness::topics(&[("missing", &[0]), ("t", &[5])]),
            ..Default::default()
        },
    );
    let codes: Vec<(String, i16)> = response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter().map(move |p| (t.name.clone(), p.partition_error_code)))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("missing".to_string(), code(ErrorCode::UnknownTopicOrPartition)),
            ("t".to_string(), code(ErrorCode::OperationNotAttempted))
        ]
    );
}

#[test]
fn add_partitions_v4_batched_and_verify_only() {
    let mut h = Harness::new();
    let a = h.init("a", 60_000);
    let b = h.init("b", 60_000);
    let response = h.add_partitions_with(
        4,
        AddPartitionsToTxnRequest {
            transactions: vec![
                Harness::transaction("a", a.producer_id, a.producer_epoch, false, &[("t", &[0])]),
                Harness::transaction("b", b.producer_id, b.producer_epoch + 1, false, &[("t", &[1])]),
            ],
            ..Default::default()
        },
    );
    assert_eq!(response.results_by_transaction.len(), 2);
    let first = &response.results_by_transaction[0];
    assert_eq!(first.transactional_id, "a");
    assert_eq!(first.topic_results[0].results_by_partition[0].partition_error_code, 0);
    let second = &response.results_by_transaction[1];
    assert_eq!(second.topic_results[0].results_by_partition[0].partition_error_code, code(ErrorCode::ProducerFenced));
    assert_eq!(state(&h, "a"), TxnState::Ongoing);
    assert_eq!(state(&h, "b"), TxnState::Empty);

    let records = h.log.len();
    let response = h.add_partitions_with(
        5,
        AddPartitionsToTxnRequest {
            transactions: vec![
                Harness::transaction("a", a.producer_id, a.producer_epoch, true, &[("t", &[0, 3])]),
                Harness::transaction("nope", 1, 0, true, &[("t", &[0])]),
            ],
            ..Default::default()
        },
    );
    assert_eq!(h.log.len(), records, "verification writes nothing");
    let partitions: Vec<(i32, i16)> = response.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| (p.partition_index, p.partition_error_code))
        .collect();
    assert_eq!(partitions, vec![(0, 0), (3, code(ErrorCode::TransactionAbortable))]);
    let unknown = &response.results_by_transaction[1].topic_results[0].results_by_partition[0];
    assert_eq!(unknown.partition_error_code, code(ErrorCode::InvalidProducerIdMapping));
}

#[test]
fn add_offsets_adds_the_group_partition() {
    let mut h = Harness::new();
    let init = h.init("tx", 60_000);
    assert_eq!(h.add_offsets(0, "tx", init.producer_id, init.producer_epoch + 1, "g"), ErrorCode::InvalidProducerEpoch);
    assert_eq!(h.add_offsets(2, "tx", init.producer_id, init.producer_epoch + 1, "g"), ErrorCode::ProducerFenced);
    assert_eq!(h.add_offsets(3, "tx", init.producer_id, init.producer_epoch, "g"), ErrorCode::None);
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.state, TxnState::Ongoing);
    assert!(txn.partitions.contains(&("__consumer_offsets".to_string(), 7)));
    assert_eq!(h.end_txn("tx", init.producer_id, init.producer_epoch, true), ErrorCode::None);
    assert_eq!(h.markers[0].partitions, vec![("__consumer_offsets".to_string(), 7)]);
}

#[test]
fn commit_writes_markers_then_completes() {
    let mut h = Harness::new();
    let (pid, epoch) = begin(&mut h, "tx");
    h.add_offsets(3, "tx", pid, epoch, "g");
    assert_eq!(h.end_txn("tx", pid, epoch, true), ErrorCode::None);
    assert_eq!(state(&h, "tx"), TxnState::PrepareCommit);
    assert_eq!(
        h.markers,
        vec![MarkerRequest {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            coordinator_epoch: 5,
            commit: true,
            partitions: vec![("__consumer_offsets".into(), 7), ("t".into(), 0), ("t".into(), 1)],
            transaction_version: 0,
        }]
    );
    // While the markers are written, the transaction is busy.
    assert_eq!(h.add_partitions(3, "tx", pid, epoch, &[("t", &[2])]), ErrorCode::ConcurrentTransactions);
    assert_eq!(h.init("tx", 60_000).error_code, code(ErrorCode::ConcurrentTransactions));
    h.ack_markers();
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.state, TxnState::CompleteCommit);
    assert!(txn.partitions.is_empty());
    // The next transaction on the same epoch.
    assert_eq!(h.add_partitions(3, "tx", pid, epoch, &[("t", &[2])]), ErrorCode::None);
    assert_eq!(h.end_txn("tx", pid, epoch, false), ErrorCode::None);
    assert!(!h.markers[0].commit);
    h.ack_markers();
    assert_eq!(state(&h, "tx"), TxnState::CompleteAbort);
}

#[test]
fn failed_markers_are_handed_back_and_stale_acks_ignored() {
    let mut h = Harness::new();
    let (pid, epoch) = begin(&mut h, "tx");
    h.end_txn("tx", pid, epoch, true);
    let marker = h.markers.pop().expect("marker");
    let ctx = h.ctx(0);
    let effects = h.shard.markers_written(&ctx, "tx", pid, epoch, Err(ErrorCode::NotLeaderOrFollower));
    assert!(effects.records.is_empty());
    assert_eq!(effects.markers, vec![marker]);
    let effects = h.shard.markers_written(&ctx, "tx", pid, epoch + 1, Ok(()));
    assert!(effects.is_empty());
    assert_eq!(state(&h, "tx"), TxnState::PrepareCommit);
}

#[test]
fn end_txn_retry_is_idempotent() {
    let mut h = Harness::new();
    let (pid, epoch) = begin(&mut h, "tx");
    assert_eq!(h.end_txn("tx", pid, epoch, true), ErrorCode::None);
    // Retried while the markers are being written: retry later.
    assert_eq!(h.end_txn("tx", pid, epoch, true), ErrorCode::ConcurrentTransactions);
    assert_eq!(h.end_txn("tx", pid, epoch, false), ErrorCode::InvalidTxnState);
    h.ack_markers();
    let records = h.log.len();
    assert_eq!(h.end_txn("tx", pid, epoch, true), ErrorCode::None);
    assert_eq!(h.log.len(), records, "a retry writes nothing");
    assert_eq!(h.end_txn("tx", pid, epoch, false), ErrorCode::InvalidTxnState);
    assert!(h.markers.is_empty());
}

#[test]
fn end_txn_errors() {
    let mut h = Harness::new();
    assert_eq!(h.end_txn("tx", 1, 0, true), ErrorCode::InvalidProducerIdMapping);
    let init = h.init("tx", 60_000);
    assert_eq!(h.end_txn("tx", init.producer_id, 0, true), ErrorCode::InvalidTxnState, "Empty");
    assert_eq!(h.end_txn("tx", init.producer_id + 1, 0, true), ErrorCode::InvalidProducerIdMapping);
    assert_eq!(h.end_txn("tx", init.producer_id, 1, true), ErrorCode::ProducerFenced);
    let old = h.end_txn_with(1, "tx", init.producer_id, 1, true, 0);
    assert_eq!(old.error_code, code(ErrorCode::InvalidProducerEpoch));
    assert_eq!(h.end_txn("", init.producer_id, 0, true), ErrorCode::InvalidRequest);
}

#[test]
fn init_fences_a_zombie_with_an_ongoing_transaction() {
    let mut h = Harness::new();
    let (pid, epoch) = begin(&mut h, "tx");
    // A new instance: the open transaction is aborted with a bumped epoch.
    let init = h.init("tx", 60_000);
    assert_eq!(init.error_code, code(ErrorCode::ConcurrentTransactions));
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.state, TxnState::PrepareAbort);
    assert_eq!(txn.producer_epoch, epoch + 1);
    assert_eq!(h.markers.len(), 1);
    assert!(!h.markers[0].commit);
    assert_eq!(h.markers[0].producer_epoch, epoch + 1);
    // The zombie is fenced everywhere.
    assert_eq!(h.add_partitions(3, "tx", pid, epoch, &[("t", &[4])]), ErrorCode::ProducerFenced);
    assert_eq!(h.end_txn("tx", pid, epoch, true), ErrorCode::ProducerFenced);
    // Still aborting: the new instance retries.
    assert_eq!(h.init("tx", 60_000).error_code, code(ErrorCode::ConcurrentTransactions));
    h.ack_markers();
    assert_eq!(state(&h, "tx"), TxnState::CompleteAbort);
    let init = h.init("tx", 60_000);
    assert_eq!((init.error_code, init.producer_id, init.producer_epoch), (0, pid, epoch + 2));
    assert_eq!(h.end_txn("tx", pid, epoch + 1, false), ErrorCode::ProducerFenced);
}

#[test]
fn transaction_timeout_aborts_with_an_epoch_bump() {
    let mut h = Harness::new();
    let init = h.init("tx", 20_000);
    h.now = 1_000;
    h.add_partitions(3, "tx", init.producer_id, init.producer_epoch, &[("t", &[0])]);
    let idle = h.init("idle", 20_000);
    h.advance(19_000); // now 20,000: start + timeout is not yet passed
    assert_eq!(state(&h, "tx"), TxnState::Ongoing);
    h.advance(10_000);
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!(txn.state, TxnState::PrepareAbort);
    assert_eq!(txn.producer_epoch, init.producer_epoch + 1);
    assert_eq!(state(&h, "idle"), TxnState::Empty);
    assert_eq!(h.markers.len(), 1);
    h.ack_markers();
    assert_eq!(state(&h, "tx"), TxnState::CompleteAbort);
    // The old producer learns it was fenced.
    assert_eq!(h.end_txn("tx", init.producer_id, init.producer_epoch, true), ErrorCode::ProducerFenced);
    assert_eq!(idle.error_code, 0);
}

#[test]
fn idle_transactional_ids_expire() {
    let config = TxnConfig {
        transactional_id_expiration_ms: 100_000,
        remove_expired_transaction_cleanup_interval_ms: 10_000,
        ..TxnConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.init("idle", 60_000);
    let busy = h.init("busy", 900_000);
    assert_eq!(h.add_partitions(3, "busy", busy.producer_id, busy.producer_epoch, &[("t", &[5])]), ErrorCode::None);
    h.advance(90_000);
    assert!(h.shard.transaction("idle").is_some(), "not idle long enough yet");
    h.advance(20_000);
    assert!(h.shard.transaction("idle").is_none());
    assert_eq!(h.log.last(), Some(&TxnRecord { transactional_id: "idle".into(), value: None }));
    // Ongoing ids never expire (the timeout aborts them first, then they idle).
    assert_eq!(state(&h, "busy"), TxnState::Ongoing);
    // An expired id starts over with a new producer id.
    let init = h.init("idle", 60_000);
    assert_eq!((init.error_code, init.producer_epoch), (0, 0));
}

#[test]
fn list_and_describe_transactions() {
    let mut h = Harness::new();
    h.now = 1_000;
    let (pid, _) = begin(&mut h, "ongoing-1");
    h.init("empty-1", 60_000);
    let (pid2, epoch2) = begin(&mut h, "committing");
    h.end_txn("committing", pid2, epoch2, true);
    h.now = 11_000;

    let list = |h: &Harness, request: ListTransactionsRequest| {
        let response = h.shard.list_transactions(&request, h.now);
        let mut ids: Vec<(String, String)> = response
            .transaction_states
            .iter()
            .map(|s| (s.transactional_id.clone(), s.transaction_state.clone()))
            .collect();
        ids.sort();
        (response.error_code, ids, response.unknown_state_filters)
    };
    let (error, all, _) = list(&h, ListTransactionsRequest::default());
    assert_eq!(error, 0);
    assert_eq!(
        all,
        vec![
            ("committing".into(), "PrepareCommit".into()),
            ("empty-1".into(), "Empty".into()),
            ("ongoing-1".into(), "Ongoing".into())
        ]
    );
    let (_, by_state, unknown) = list(
        &h,
        ListTransactionsRequest { state_filters: vec!["Ongoing".into(), "Bogus".into()], ..Default::default() },
    );
    assert_eq!(by_state, vec![("ongoing-1".into(), "Ongoing".into())]);
    assert_eq!(unknown, vec!["Bogus".to_string()]);
    let (_, by_pid, _) = list(&h, ListTransactionsRequest { producer_id_filters: vec![pid], ..Default::default() });
    assert_eq!(by_pid.len(), 1);
    let (_, long_running, _) = list(&h, ListTransactionsRequest { duration_filter: 5_000, ..Default::default() });
    // As in Kafka, an Empty id (start -1) counts as running since forever.
    assert_eq!(long_running.len(), 3);
    h.now = 3_000;
    let (_, recent, _) = list(&h, ListTransactionsRequest { duration_filter: 5_000, ..Default::default() });
    assert!(recent.is_empty(), "{recent:?}");
    h.now = 11_000;
    let (_, by_pattern, _) =
        list(&h, ListTransactionsRequest { transactional_id_pattern: Some(".*-1".into()), ..Default::default() });
    assert_eq!(by_pattern.len(), 2);
    let (_, partial, _) =
        list(&h, ListTransactionsRequest { transactional_id_pattern: Some("empty".into()), ..Default::default() });
    assert!(partial.is_empty(), "the pattern must match the whole id");
    let (error, _, _) =
        list(&h, ListTransactionsRequest { transactional_id_pattern: Some("(".into()), ..Default::default() });
    assert_eq!(error, code(ErrorCode::InvalidRegularExpression));

    let described = h.shard.describe_transactions(&["ongoing-1".into(), "nope".into(), String::new()]);
    assert_eq!(described[0].error_code, 0);
    assert_eq!(described[0].transaction_state, "Ongoing");
    assert_eq!(described[0].transaction_start_time_ms, 1_000);
    assert_eq!(described[0].transaction_timeout_ms, 60_000);
    assert_eq!(described[0].producer_id, pid);
    assert_eq!(
        described[0].topics,
        vec![TopicData { topic: "t".into(), partitions: vec![0, 1], ..Default::default() }]
    );
    assert_eq!(described[1].error_code, code(ErrorCode::TransactionalIdNotFound));
    assert_eq!(described[2].error_code, code(ErrorCode::InvalidRequest));
}

#[test]
fn reload_rebuilds_state_and_resends_markers_of_prepared_transactions() {
    let mut h = Harness::new();
    let (pid, epoch) = begin(&mut h, "committing");
    h.end_txn("committing", pid, epoch, true);
    let (pid2, epoch2) = begin(&mut h, "open");
    let (pid3, epoch3) = begin(&mut h, "done");
    h.end_txn("done", pid3, epoch3, false);
    // Only "done"'s markers get written before the failover.
    let markers = std::mem::take(&mut h.markers);
    for marker in &markers {
        if marker.transactional_id == "done" {
            h.markers.push(marker.clone());
        }
    }
    h.ack_markers();

    let (mut shard, effects) = h.reload();
    for id in ["committing", "open", "done"] {
        let before = h.shard.transaction(id).expect("known");
        let after = shard.transaction(id).expect("reloaded");
        assert_eq!(
            (after.state, after.producer_id, after.producer_epoch),
            (before.state, before.producer_id, before.producer_epoch)
        );
        assert_eq!(after.partitions, before.partitions);
    }
    assert_eq!(shard.transaction("done").expect("known").state, TxnState::CompleteAbort);
    assert!(effects.records.is_empty());
    assert_eq!(effects.markers.len(), 1);
    let marker = &effects.markers[0];
    assert_eq!(marker.transactional_id, "committing");
    assert!(marker.commit);
    assert_eq!(marker.coordinator_epoch, 6, "the new coordinator's epoch");
    // The new coordinator completes it.
    let ctx = crate::shard::RequestContext { api_version: 0, now_ms: h.now, reply: 1 };
    let effects = shard.markers_written(&ctx, "committing", pid, epoch, Ok(()));
    assert_eq!(effects.records.len(), 1);
    for record in effects.records {
        shard.replay(record);
    }
    assert_eq!(shard.transaction("committing").expect("known").state, TxnState::CompleteCommit);
    assert_eq!(shard.transaction("open").expect("known").producer_id, pid2);
    assert_eq!(shard.transaction("open").expect("known").producer_epoch, epoch2);
}

#[test]
fn transaction_version_1_writes_flexible_values() {
    let mut h = Harness::with_config(TxnConfig { transaction_version: 1, ..TxnConfig::default() });
    begin(&mut h, "tx");
    let (_, value) = h.log[0].encode().expect("encodes");
    assert_eq!(&value.expect("value")[..2], &[0, 1]);
}

#[test]
fn transaction_version_2_bumps_the_epoch_per_transaction() {
    let mut h = Harness::with_config(TxnConfig { transaction_version: 2, ..TxnConfig::default() });
    let (pid, epoch) = begin(&mut h, "tx");
    let response = h.end_txn_with(5, "tx", pid, epoch, true, 2);
    assert_eq!((response.error_code, response.producer_id, response.producer_epoch), (0, pid, epoch + 1));
    assert_eq!(h.markers[0].producer_epoch, epoch + 1);
    assert_eq!(h.markers[0].transaction_version, 2);
    // A retry with the old epoch while the markers are written.
    let retry = h.end_txn_with(5, "tx", pid, epoch, true, 2);
    assert_eq!(retry.error_code, code(ErrorCode::ConcurrentTransactions));
    h.ack_markers();
    let retry = h.end_txn_with(5, "tx", pid, epoch, true, 2);
    assert_eq!((retry.error_code, retry.producer_id, retry.producer_epoch), (0, pid, epoch + 1));
    // The next transaction uses the new epoch.
    assert_eq!(h.add_partitions(3, "tx", pid, epoch + 1, &[("t", &[0])]), ErrorCode::None);
    let stale = h.end_txn_with(5, "tx", pid, epoch, true, 2);
    assert_eq!(stale.error_code, code(ErrorCode::ProducerFenced));
}

#[test]
fn transaction_version_2_moves_to_a_new_producer_id_when_the_epoch_is_exhausted() {
    let mut h = Harness::with_config(TxnConfig { transaction_version: 2, ..TxnConfig::default() });
    let (pid, _) = begin(&mut h, "tx");
    let mut record = h.log.last().expect("record").clone();
    record.value.as_mut().expect("value").producer_epoch = i16::MAX - 1;
    h.shard.replay(record);
    let response = h.end_txn_with(5, "tx", pid, i16::MAX - 1, false, 2);
    assert_eq!(response.error_code, 0);
    assert_ne!(response.producer_id, pid);
    assert_eq!(response.producer_epoch, 0);
    assert_eq!(h.markers[0].producer_id, pid);
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.ack_markers();
    let txn = h.shard.transaction("tx").expect("known");
    assert_eq!((txn.producer_id, txn.producer_epoch, txn.state), (response.producer_id, 0, TxnState::CompleteAbort));
    // The retry of the old epoch after the overflow is recognised.
    let retry = h.end_txn_with(5, "tx", pid, i16::MAX - 1, false, 2);
    assert_eq!((retry.error_code, retry.producer_id, retry.producer_epoch), (0, response.producer_id, 0));
}
