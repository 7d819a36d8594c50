//! Random sequences of requests, marker acknowledgements and time passing, checked
//! against invariants: nothing panics, every answer encodes, and replaying the log
//! into a fresh shard rebuilds the same durable state.

use super::harness::Harness;
use crate::config::TxnConfig;
use crate::state::TxnState;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Init { id: usize, version: i16, with_epoch: bool },
    Add { id: usize, version: i16, partition: i32, stale: bool },
    AddOffsets { id: usize },
    End { id: usize, commit: bool, stale: bool },
    Ack,
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, 0i16..=5, any::<bool>()).prop_map(|(id, version, with_epoch)| Op::Init { id, version, with_epoch }),
        (0usize..3, 0i16..=3, 0i32..4, any::<bool>()).prop_map(|(id, version, partition, stale)| Op::Add {
            id,
            version,
            partition,
            stale
        }),
        (0usize..3).prop_map(|id| Op::AddOffsets { id }),
        (0usize..3, any::<bool>(), any::<bool>()).prop_map(|(id, commit, stale)| Op::End { id, commit, stale }),
        Just(Op::Ack),
        (1i64..40_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

const IDS: [&str; 3] = ["a", "b", "c"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_keep_the_log_and_state_in_step(ops in proptest::collection::vec(op(), 1..60)) {
        let config = TxnConfig {
            transactional_id_expiration_ms: 120_000,
            remove_expired_transaction_cleanup_interval_ms: 30_000,
            ..TxnConfig::default()
        };
        let mut h = Harness::with_config(config);
        for op in ops {
            let current = |h: &Harness, id: usize| {
                h.shard.transaction(IDS[id]).map(|txn| (txn.producer_id, txn.producer_epoch)).unwrap_or((1, 0))
            };
            match op {
                Op::Init { id, version, with_epoch } => {
                    let (producer_id, producer_epoch) = if with_epoch && version >= 3 { current(&h, id) } else { (-1, -1) };
                    h.init_with(version, InitProducerIdRequest {
                        transactional_id: Some(IDS[id].into()),
                        transaction_timeout_ms: 60_000,
                        producer_id,
                        producer_epoch,
                        ..Default::default()
                    });
                }
                Op::Add { id, version, partition, stale } => {
                    let (pid, epoch) = current(&h, id);
                    let epoch = if stale { epoch.wrapping_sub(1) } else { epoch };
                    h.add_partitions(version, IDS[id], pid, epoch, &[("t", &[partition])]);
                }
                Op::AddOffsets { id } => {
                    let (pid, epoch) = current(&h, id);
                    h.add_offsets(3, IDS[id], pid, epoch, "g");
                }
                Op::End { id, commit, stale } => {
                    let (pid, epoch) = current(&h, id);
                    let epoch = if stale { epoch.wrapping_sub(1) } else { epoch };
                    h.end_txn(IDS[id], pid, epoch, commit);
                }
                Op::Ack => h.ack_markers(),
                Op::Advance { ms } => h.advance(ms),
            }
            // Markers are outstanding exactly for prepared transactions.
            for txn in h.shard.transactions() {
                let outstanding = h.markers.iter().any(|m| m.transactional_id == txn.transactional_id
                    && m.producer_id == txn.producer_id && m.producer_epoch == txn.producer_epoch);
                prop_assert_eq!(outstanding, txn.state.is_prepare(), "{:?}", txn);
                prop_assert!(txn.state != TxnState::Ongoing || !txn.partitions.is_empty());
                prop_assert!(txn.state == TxnState::Ongoing || txn.state.is_prepare() || txn.partitions.is_empty());
            }
            let (reloaded, effects) = h.reload();
            let prepared = h.shard.transactions().filter(|txn| txn.state.is_prepare()).count();
            prop_assert_eq!(effects.markers.len(), prepared);
            prop_assert_eq!(reloaded.transaction_count(), h.shard.transaction_count());
            for txn in h.shard.transactions() {
                let other = reloaded.transaction(&txn.transactional_id).expect("reloaded");
                prop_assert_eq!((other.producer_id, other.producer_epoch, other.state), (txn.producer_id, txn.producer_epoch, txn.state));
                prop_assert_eq!(&other.partitions, &txn.partitions);
                prop_assert_eq!(other.start_timestamp_ms, txn.start_timestamp_ms);
                prop_assert_eq!(other.timeout_ms, txn.timeout_ms);
            }
        }
    }
}
