//! Random sequences of controller operations, each replayed as the broker would: the
//! records go through a batch and back, then into the image. Replay must never fail.

use gregor_protocol::records::RecordBatch;
use proptest::prelude::*;

use super::{cluster, with_ctx};
use crate::controller::*;
use crate::image::MetadataImage;
use crate::record::{decode_batch, encode_batch, MetadataRecord};

const NAMES: [&str; 5] = ["a", "b", "a.b", "a_b", "c-1"];

#[derive(Debug, Clone)]
enum Op {
    Create { name: usize, partitions: i32, factor: i16, configs: bool },
    Delete { name: usize, by_id: bool },
    AddPartitions { name: usize, extra: i32 },
    Alter { name: usize, op: u8, broker: bool },
    Legacy { name: usize },
    ProducerIds,
    Elect { unclean: bool },
    Alive { count: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NAMES.len(), -1..4i32, -1..4i16, any::<bool>())
            .prop_map(|(name, partitions, factor, configs)| Op::Create { name, partitions, factor, configs }),
        (0..NAMES.len(), any::<bool>()).prop_map(|(name, by_id)| Op::Delete { name, by_id }),
        (0..NAMES.len(), -1..3i32).prop_map(|(name, extra)| Op::AddPartitions { name, extra }),
        (0..NAMES.len(), 0..4u8, any::<bool>()).prop_map(|(name, op, broker)| Op::Alter { name, op, broker }),
        (0..NAMES.len()).prop_map(|name| Op::Legacy { name }),
        Just(Op::ProducerIds),
        any::<bool>().prop_map(|unclean| Op::Elect { unclean }),
        (1..4usize).prop_map(|count| Op::Alive { count }),
    ]
}

fn records_of(image: &MetadataImage, op: &Op, ids: &mut u128) -> Vec<MetadataRecord> {
    match op {
        Op::Create { name, partitions, factor, configs } => {
            let topic = NewTopic {
                name: NAMES[*name].into(),
                num_partitions: *partitions,
                replication_factor: *factor,
                assignments: vec![],
                configs: if *configs { vec![("x.list".into(), Some("1,2".into()))] } else { vec![] },
            };
            with_ctx(ids, |ctx| create_topics(image, ctx, &[topic], false).0)
        }
        Op::Delete { name, by_id } => {
            let reference = match (by_id, image.topic(NAMES[*name])) {
                (true, Some(topic)) => TopicRef::Id(topic.id),
                _ => TopicRef::Name(NAMES[*name].into()),
            };
            delete_topics(image, &[reference]).0
        }
        Op::AddPartitions { name, extra } => {
            let current = image.topic(NAMES[*name]).map_or(0, |topic| topic.partitions.len() as i32);
            let request = NewPartitions { name: NAMES[*name].into(), count: current + extra, assignments: None };
            with_ctx(ids, |ctx| create_partitions(image, ctx, &[request], false).0)
        }
        Op::Alter { name, op, broker } => {
            let alter = [AlterOp::Set, AlterOp::Delete, AlterOp::Append, AlterOp::Subtract][usize::from(*op)];
            let resource =
                if *broker { ConfigResource::Broker(Some(1)) } else { ConfigResource::Topic(NAMES[*name].into()) };
            let change = ConfigChange { resource, ops: vec![("x.list".into(), alter, Some("2,3".into()))] };
            with_ctx(ids, |ctx| incremental_alter_configs(image, ctx, &[change], false).0)
        }
        Op::Legacy { name } => {
            let resource = ConfigResource::Topic(NAMES[*name].into());
            with_ctx(ids, |ctx| alter_configs(image, ctx, &[(resource, vec![("y".into(), Some("1".into()))])], false).0)
        }
        Op::ProducerIds => allocate_producer_ids(image, 1, 5).0,
        Op::Elect { unclean } => {
            elect_leaders(image, if *unclean { ELECTION_UNCLEAN } else { ELECTION_PREFERRED }, None).0
        }
        // Brokers 1..=count unfenced, the others fenced: one broker changes per step,
        // as the controller fences and unfences them one at a time.
        Op::Alive { count } => {
            let alive = *count as i32;
            let change = image.brokers().find(|broker| broker.fenced == (broker.id <= alive));
            match change {
                Some(broker) if broker.fenced => brokers::unfence_broker(image, broker.id).0,
                Some(broker) => brokers::fence_broker(image, broker.id).0,
                None => Vec::new(),
            }
        }
    }
}

proptest! {
    #[test]
    fn replaying_what_the_controller_decides_never_fails(ops in prop::collection::vec(op(), 1..40)) {
        let mut image = cluster(3);
        let mut ids = 0u128;
        for op in &ops {
            let records = records_of(&image, op, &mut ids);
            if records.is_empty() {
                continue;
            }
            // Through the log's bytes, as the broker would.
            let batch = encode_batch(&records, 1).unwrap();
            let batch = RecordBatch::new(batch.freeze()).unwrap();
            let decoded = decode_batch(&batch).unwrap();
            prop_assert_eq!(&decoded, &records);
            let before = image.clone();
            let before_topics: Vec<(String, usize)> =
                before.topics().map(|topic| (topic.name.clone(), topic.partitions.len())).collect();
            for record in &decoded {
                if let Err(error) = image.replay(record) {
                    return Err(TestCaseError::fail(format!("{op:?}: {record:?}: {error}")));
                }
            }
            // Invariants: names and ids agree, partitions are dense, leaders are replicas.
            for topic in image.topics() {
                prop_assert_eq!(image.topic(&topic.name).map(|found| found.id), Some(topic.id));
                prop_assert!(topic.partitions.keys().copied().eq(0..topic.partitions.len() as i32));
                for partition in topic.partitions.values() {
                    prop_assert!(partition.leader == -1 || partition.replicas.contains(&partition.leader));
                    prop_assert!(partition.isr.iter().all(|replica| partition.replicas.contains(replica)));
                }
            }
            // The image published before this operation is untouched by it.
            let still: Vec<(String, usize)> =
                before.topics().map(|topic| (topic.name.clone(), topic.partitions.len())).collect();
            prop_assert_eq!(still, before_topics);
        }
    }
}
