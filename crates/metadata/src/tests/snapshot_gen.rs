//! Random images built the only way images are built: by replaying records. Each op is
//! a handful of random words turned into one record aimed at what the image holds
//! (existing topics, partitions, brokers with their epochs, ACL ids, SCRAM users), so
//! most replay; the few that do not (a duplicate topic name, a stale broker epoch)
//! leave the image unchanged, as replay promises.

use gregor_protocol::messages::{
    access_control_entry_record::AccessControlEntryRecord,
    broker_registration_change_record::BrokerRegistrationChangeRecord,
    config_record::ConfigRecord,
    feature_level_record::FeatureLevelRecord,
    fence_broker_record::FenceBrokerRecord,
    partition_change_record::PartitionChangeRecord,
    partition_record::PartitionRecord,
    producer_ids_record::ProducerIdsRecord,
    register_broker_record::{BrokerEndpoint, BrokerFeature, RegisterBrokerRecord},
    remove_access_control_entry_record::RemoveAccessControlEntryRecord,
    remove_topic_record::RemoveTopicRecord,
    remove_user_scram_credential_record::RemoveUserScramCredentialRecord,
    topic_record::TopicRecord,
    unfence_broker_record::UnfenceBrokerRecord,
    unregister_broker_record::UnregisterBrokerRecord,
    user_scram_credential_record::UserScramCredentialRecord,
};
use gregor_protocol::Uuid;
use proptest::prelude::*;

use crate::image::{resource_type, MetadataImage, NO_LEADER, NO_LEADER_CHANGE};
use crate::record::MetadataRecord;

const TOPICS: [&str; 6] = ["a", "b", "orders", "__consumer_offsets", "t.1", "t_1"];
const LISTENERS: [&str; 3] = ["PLAINTEXT", "SSL", "CONTROLLER"];
const FEATURES: [&str; 4] = ["metadata.version", "kraft.version", "group.version", "transaction.version"];
const CONFIG_TYPES: [i8; 5] = [
    resource_type::TOPIC,
    resource_type::BROKER,
    resource_type::BROKER_LOGGER,
    resource_type::CLIENT_METRICS,
    resource_type::GROUP,
];
const CONFIG_NAMES: [&str; 4] = ["retention.ms", "cleanup.policy", "x.list", "log.retention.bytes"];
const USERS: [&str; 3] = ["alice", "bob", "User:carol"];
/// Random words per op; draws past the end keep mixing the ones there.
pub(crate) const WORDS_PER_OP: usize = 12;

/// Reads random numbers from one op's words.
struct Draw<'a> {
    words: &'a [u32],
    at: usize,
}

impl Draw<'_> {
    fn next(&mut self) -> u32 {
        let word = self.words.get(self.at % self.words.len().max(1)).copied().unwrap_or(0);
        let round = u32::try_from(self.at / self.words.len().max(1)).unwrap_or(u32::MAX);
        self.at += 1;
        word.rotate_left(round.wrapping_mul(7)) ^ round.wrapping_mul(0x9e37_79b9)
    }

    fn below(&mut self, bound: u32) -> u32 {
        self.next() % bound.max(1)
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(u32::try_from(len).unwrap_or(u32::MAX)) as usize
    }

    fn flag(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.index(from.len())]
    }

    fn uuid(&mut self) -> Uuid {
        // Never zero: the zero id means "none" in several records.
        Uuid::from_u128((u128::from(self.next()) << 32 | u128::from(self.next())) + 1)
    }

    fn replicas(&mut self) -> Vec<i32> {
        (0..self.below(4)).map(|_| self.below(6) as i32).collect()
    }

    fn maybe_replicas(&mut self) -> Option<Vec<i32>> {
        self.flag().then(|| self.replicas())
    }

    fn bytes(&mut self) -> Vec<u8> {
        (0..self.below(40)).map(|_| self.next() as u8).collect()
    }
}

/// One op: the words it draws from.
pub(crate) fn op_words() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), WORDS_PER_OP)
}

/// Replays one record per op into an empty image; records the image refuses are
/// skipped. Returns the image and how many records it took.
pub(crate) fn random_image(ops: &[Vec<u32>]) -> (MetadataImage, usize) {
    let mut image = MetadataImage::empty();
    let mut applied = 0;
    for words in ops {
        let record = record_for(&image, &mut Draw { words, at: 0 });
        let before = image.clone();
        match image.replay(&record) {
            Ok(()) => applied += 1,
            Err(_) => assert_eq!(image, before, "a refused {record:?} changed the image"),
        }
    }
    (image, applied)
}

fn record_for(image: &MetadataImage, draw: &mut Draw<'_>) -> MetadataRecord {
    let brokers: Vec<(i32, i64)> = image.brokers().map(|broker| (broker.id, broker.epoch)).collect();
    let topics: Vec<_> = image.topics().map(|topic| (topic.id, topic.partitions.len())).collect();
    match draw.below(17) {
        0 | 1 => register_broker(draw),
        2 if !brokers.is_empty() => {
            let (id, epoch) = draw.pick(&brokers);
            MetadataRecord::FenceBroker(FenceBrokerRecord { id, epoch, ..Default::default() })
        }
        3 if !brokers.is_empty() => {
            let (id, epoch) = draw.pick(&brokers);
            MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id, epoch, ..Default::default() })
        }
        4 if !brokers.is_empty() => {
            let (broker_id, broker_epoch) = draw.pick(&brokers);
            let log_dirs = (0..draw.below(3)).map(|_| draw.uuid()).collect();
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id,
                broker_epoch,
                fenced: draw.pick(&[-1, 0, 1]),
                in_controlled_shutdown: draw.pick(&[0, 1]),
                log_dirs,
                ..Default::default()
            })
        }
        5 if !brokers.is_empty() && draw.below(3) == 0 => {
            let (broker_id, broker_epoch) = draw.pick(&brokers);
            MetadataRecord::UnregisterBroker(UnregisterBrokerRecord { broker_id, broker_epoch, ..Default::default() })
        }
        6 | 7 => MetadataRecord::Topic(TopicRecord {
            name: draw.pick(&TOPICS).to_string(),
            topic_id: draw.uuid(),
            ..Default::default()
        }),
        8 | 9 if !topics.is_empty() => {
            let (topic_id, partitions) = draw.pick(&topics);
            // Mostly the next partition, sometimes a rewrite of an existing one.
            let partition_id = if draw.flag() { partitions } else { draw.index(partitions + 1) };
            partition(draw, topic_id, i32::try_from(partition_id).unwrap_or(0))
        }
        10 | 11 if topics.iter().any(|(_, partitions)| *partitions > 0) => {
            let with_partitions: Vec<_> = topics.iter().filter(|(_, partitions)| *partitions > 0).copied().collect();
            let (topic_id, partitions) = draw.pick(&with_partitions);
            let partition_id = i32::try_from(draw.index(partitions)).unwrap_or(0);
            partition_change(draw, topic_id, partition_id)
        }
        12 if !topics.is_empty() && draw.below(3) == 0 => {
            let (topic_id, _) = draw.pick(&topics);
            MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id, ..Default::default() })
        }
        13 => {
            let kind = draw.pick(&CONFIG_TYPES);
            let resource_name = match kind {
                resource_type::BROKER => ["", "1", "2"][draw.index(3)].to_string(),
                _ => draw.pick(&TOPICS).to_string(),
            };
            MetadataRecord::Config(ConfigRecord {
                resource_type: kind,
                resource_name,
                name: draw.pick(&CONFIG_NAMES).to_string(),
                value: (draw.below(4) != 0).then(|| draw.below(1_000_000).to_string()),
                ..Default::default()
            })
        }
        14 => MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: draw.below(4) as i32,
            broker_epoch: i64::from(draw.below(50)),
            next_producer_id: image.next_producer_id() + 1 + i64::from(draw.below(5000)),
            ..Default::default()
        }),
        15 => MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: draw.pick(&FEATURES).to_string(),
            feature_level: draw.below(30) as i16,
            ..Default::default()
        }),
        16 => acl_or_scram(image, draw),
        // A case whose precondition failed: a record that always replays.
        _ => register_broker(draw),
    }
}

fn register_broker(draw: &mut Draw<'_>) -> MetadataRecord {
    let end_points = (0..draw.below(3))
        .map(|index| BrokerEndpoint {
            name: LISTENERS[index as usize].to_string(),
            host: format!("host-{}", draw.below(9)),
            port: draw.below(65536) as u16,
            security_protocol: draw.pick(&[0, 1, 2, 3]),
            ..Default::default()
        })
        .collect();
    let features = (0..draw.below(4))
        .map(|_| BrokerFeature {
            name: draw.pick(&FEATURES).to_string(),
            min_supported_version: draw.below(3) as i16,
            max_supported_version: 3 + draw.below(20) as i16,
            ..Default::default()
        })
        .collect();
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: draw.below(5) as i32,
        incarnation_id: draw.uuid(),
        broker_epoch: i64::from(draw.below(1000)),
        end_points,
        features,
        rack: draw.flag().then(|| format!("rack-{}", draw.below(3))),
        fenced: draw.flag(),
        in_controlled_shutdown: draw.below(4) == 0,
        log_dirs: (0..draw.below(3)).map(|_| draw.uuid()).collect(),
        ..Default::default()
    })
}

fn partition(draw: &mut Draw<'_>, topic_id: Uuid, partition_id: i32) -> MetadataRecord {
    let replicas = draw.replicas();
    let directories = if draw.flag() { replicas.iter().map(|_| draw.uuid()).collect() } else { Vec::new() };
    MetadataRecord::Partition(PartitionRecord {
        partition_id,
        topic_id,
        isr: draw.replicas(),
        removing_replicas: draw.replicas(),
        adding_replicas: draw.replicas(),
        leader: if draw.below(4) == 0 { NO_LEADER } else { replicas.first().copied().unwrap_or(NO_LEADER) },
        leader_recovery_state: draw.pick(&[0, 1]),
        leader_epoch: draw.below(1 << 20) as i32,
        partition_epoch: draw.below(1 << 20) as i32,
        replicas,
        directories,
        eligible_leader_replicas: draw.maybe_replicas(),
        last_known_elr: draw.maybe_replicas(),
        ..Default::default()
    })
}

fn partition_change(draw: &mut Draw<'_>, topic_id: Uuid, partition_id: i32) -> MetadataRecord {
    let replicas = draw.maybe_replicas();
    let directories = match (&replicas, draw.below(3)) {
        (Some(replicas), 0) => Some(replicas.iter().map(|_| draw.uuid()).collect()),
        (_, 1) => Some(Vec::new()),
        _ => None,
    };
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id,
        topic_id,
        isr: draw.maybe_replicas(),
        leader: draw.pick(&[NO_LEADER_CHANGE, NO_LEADER_CHANGE, NO_LEADER, 0, 1, 2, 3]),
        replicas,
        removing_replicas: draw.maybe_replicas(),
        adding_replicas: draw.maybe_replicas(),
        leader_recovery_state: draw.pick(&[-1, -1, 0, 1]),
        directories,
        eligible_leader_replicas: draw.maybe_replicas(),
        last_known_elr: draw.maybe_replicas(),
        ..Default::default()
    })
}

fn acl_or_scram(image: &MetadataImage, draw: &mut Draw<'_>) -> MetadataRecord {
    let acl_ids: Vec<Uuid> = image.acls().keys().copied().collect();
    let users: Vec<(String, i8)> = image.scram_credentials().keys().cloned().collect();
    match draw.below(4) {
        0 if !acl_ids.is_empty() => MetadataRecord::RemoveAccessControlEntry(RemoveAccessControlEntryRecord {
            id: draw.pick(&acl_ids),
            ..Default::default()
        }),
        1 if !users.is_empty() => {
            let (name, mechanism) = users[draw.index(users.len())].clone();
            MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
                name,
                mechanism,
                ..Default::default()
            })
        }
        2 => MetadataRecord::UserScramCredential(UserScramCredentialRecord {
            name: draw.pick(&USERS).to_string(),
            mechanism: draw.pick(&[1, 2]),
            salt: draw.bytes().into(),
            stored_key: draw.bytes().into(),
            server_key: draw.bytes().into(),
            iterations: 4096 + draw.below(12289) as i32,
            ..Default::default()
        }),
        _ => MetadataRecord::AccessControlEntry(AccessControlEntryRecord {
            id: draw.uuid(),
            resource_type: draw.pick(&[2, 3, 4, 5, 6]),
            resource_name: draw.pick(&["*", "orders", "grp", "kafka-cluster"]).to_string(),
            pattern_type: draw.pick(&[3, 4]),
            principal: draw.pick(&["User:*", "User:alice", "User:bob"]).to_string(),
            host: draw.pick(&["*", "10.0.0.1"]).to_string(),
            operation: draw.pick(&[2, 3, 4, 5, 6, 7, 8]),
            permission_type: draw.pick(&[2, 3]),
            ..Default::default()
        }),
    }
}
