//! Target `controller_decisions`: a sequence of admin requests built from untrusted
//! bytes (names, partition counts, replication factors, manual assignments, configs,
//! ACLs, elections), decided by the controller over an image of three brokers, with
//! the records of each decision replayed before the next.
//!
//! Invariants: no decision panics or allocates for counts it refuses; no operation
//! writes more than `RECORDS_PER_OPERATION_MAX` records; `validate_only` writes
//! nothing; every record a decision returns replays into the image; every request
//! item gets exactly one outcome; the internal topics keep their partition count and
//! stay compacted once they exist.

use gregor_metadata::acl::AclBinding;
use gregor_metadata::controller::{
    alter_configs, create_acls, create_partitions, create_topics, delete_topics, elect_leaders,
    incremental_alter_configs, register_broker, AlterOp, ConfigChange, ConfigResource, ControllerContext,
    LegacyConfigs, NewPartitions, NewTopic, TopicRef, INTERNAL_TOPICS, RECORDS_PER_OPERATION_MAX,
};
use gregor_metadata::{MetadataImage, MetadataRecord};
use gregor_protocol::Uuid;

/// Operations per input: enough to build and then abuse topics, few enough to stay fast.
const OPERATIONS_MAX: usize = 24;
/// Items per request: the bounds under test are about counts inside items, not lists.
const ITEMS_MAX: usize = 4;

const NAMES: [&str; 10] =
    ["a", "b", "a.b", "a_b", "__consumer_offsets", "__transaction_state", "__cluster_metadata", "", "bad name", "z"];
const COUNTS: [i32; 12] = [-2, -1, 0, 1, 2, 3, 7, 9_999, 10_000, 10_001, i32::MAX, i32::MIN];
const FACTORS: [i16; 7] = [-2, -1, 0, 1, 2, 3, i16::MAX];
const BROKERS: [i32; 6] = [1, 2, 3, 0, 7, -1];
const CONFIGS: [(&str, &[&str]); 4] = [
    ("cleanup.policy", &["compact", "delete", "compact,delete", "Compact", "bad"]),
    ("retention.ms", &["-1", "1000", "bad"]),
    ("segment.bytes", &["1048576", "bad"]),
    ("min.insync.replicas", &["1", "2"]),
];

/// Reads fuzz bytes as choices; an exhausted input reads zeros.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        first
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::from(self.byte()) % bound.max(1)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn count(&mut self) -> i32 {
        if self.byte() < 224 {
            self.pick(&COUNTS)
        } else {
            i32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
        }
    }

    fn name(&mut self) -> String {
        self.pick(&NAMES).to_string()
    }

    fn replicas(&mut self) -> Vec<i32> {
        (0..self.below(5)).map(|_| self.pick(&BROKERS)).collect()
    }

    fn config(&mut self) -> (String, Option<String>) {
        let (name, values) = self.pick(&CONFIGS);
        let value = if self.byte() < 16 { None } else { Some(self.pick(values).to_string()) };
        (name.to_string(), value)
    }
}

fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let valid = match name {
        "cleanup.policy" => value.split(',').all(|policy| matches!(policy, "compact" | "delete")),
        _ => value.parse::<i64>().is_ok(),
    };
    if valid {
        Ok(())
    } else {
        Err(format!("Invalid value {value} for configuration {name}"))
    }
}

fn image_of_three_brokers() -> MetadataImage {
    let mut image = MetadataImage::empty();
    let listeners = [("PLAINTEXT".to_string(), "localhost".to_string(), 9092)];
    let mut records = gregor_metadata::controller::bootstrap(1, &listeners, 1);
    for node in 2..=3 {
        records.extend(register_broker(node, Uuid::from_u128(node as u128), &listeners, 1));
    }
    for record in &records {
        image.replay(record).unwrap_or_else(|error| panic!("bootstrap does not replay: {error}"));
    }
    image
}

/// Checks the invariants of one decision and replays its records.
fn apply(image: &mut MetadataImage, records: &[MetadataRecord], validate_only: bool, what: &str) {
    assert!(records.len() <= RECORDS_PER_OPERATION_MAX, "{what} wrote {} records", records.len());
    assert!(!validate_only || records.is_empty(), "{what} with validate_only wrote records");
    let before: Vec<(usize, Option<String>)> = INTERNAL_TOPICS
        .iter()
        .map(|name| {
            let partitions = image.topic(name).map_or(0, |topic| topic.partitions.len());
            (partitions, image.topic_configs(name).get("cleanup.policy").cloned())
        })
        .collect();
    for record in records {
        image.replay(record).unwrap_or_else(|error| panic!("{what} returned a record that does not replay: {error}"));
    }
    for (name, (partitions, policy)) in INTERNAL_TOPICS.iter().zip(before) {
        if partitions == 0 {
            continue;
        }
        let topic = image.topic(name).unwrap_or_else(|| panic!("{what} deleted {name}"));
        assert_eq!(topic.partitions.len(), partitions, "{what} changed the partition count of {name}");
        if policy.as_deref() == Some("compact") {
            assert_eq!(
                image.topic_configs(name).get("cleanup.policy").map(String::as_str),
                Some("compact"),
                "{what} made {name} deletable"
            );
        }
    }
}

pub fn controller_decisions(data: &[u8]) {
    let mut choices = Choices(data);
    let mut image = image_of_three_brokers();
    let mut next_id: u128 = 100;
    let mut random_state: u64 = 0x2545_f491_4f6c_dd1d;
    let default_value = |_: &ConfigResource, name: &str| (name == "cleanup.policy").then(|| "delete".to_string());
    for _ in 0..OPERATIONS_MAX {
        if choices.0.is_empty() {
            break;
        }
        let mut new_uuid = || {
            next_id += 1;
            Uuid::from_u128(next_id)
        };
        // Placement's random start, deterministic for a given input.
        let mut random = || {
            random_state ^= random_state << 13;
            random_state ^= random_state >> 7;
            random_state ^= random_state << 17;
            random_state
        };
        let mut ctx = ControllerContext {
            node_id: 1,
            default_num_partitions: 1,
            default_replication_factor: 1,
            validate_topic_config: &validate_topic_config,
            validate_broker_config: &|_, _| Ok(()),
            validate_group_configs: &|_| Ok(()),
            is_list_config: &|name| name == "cleanup.policy",
            default_value: &default_value,
            new_uuid: &mut new_uuid,
            random: &mut random,
        };
        let validate_only = choices.byte() < 32;
        let items = 1 + choices.below(ITEMS_MAX);
        match choices.below(7) {
            0 => {
                let topics: Vec<NewTopic> = (0..items)
                    .map(|_| {
                        let manual = choices.byte() < 48;
                        NewTopic {
                            name: choices.name(),
                            num_partitions: if manual { -1 } else { choices.count() },
                            replication_factor: if manual { -1 } else { choices.pick(&FACTORS) },
                            assignments: if manual {
                                (0..choices.below(4))
                                    .map(|_| (choices.pick(&COUNTS[..7]), choices.replicas()))
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            configs: (0..choices.below(3)).map(|_| choices.config()).collect(),
                        }
                    })
                    .collect();
                let (records, outcomes) = create_topics(&image, &mut ctx, &topics, validate_only);
                assert_eq!(outcomes.len(), topics.len());
                apply(&mut image, &records, validate_only, "CreateTopics");
            }
            1 => {
                let refs: Vec<TopicRef> = (0..items)
                    .map(|_| match choices.flag() {
                        true => TopicRef::Name(choices.name()),
                        false => {
                            let name = choices.name();
                            TopicRef::Id(image.topic(&name).map_or(Uuid::from_u128(5), |topic| topic.id))
                        }
                    })
                    .collect();
                let (records, outcomes) = delete_topics(&image, &refs);
                assert_eq!(outcomes.len(), refs.len());
                apply(&mut image, &records, false, "DeleteTopics");
            }
            2 => {
                let requests: Vec<NewPartitions> = (0..items)
                    .map(|_| NewPartitions {
                        name: choices.name(),
                        count: choices.count(),
                        assignments: choices
                            .flag()
                            .then(|| (0..choices.below(4)).map(|_| choices.replicas()).collect()),
                    })
                    .collect();
                let (records, outcomes) = create_partitions(&image, &mut ctx, &requests, validate_only);
                assert_eq!(outcomes.len(), requests.len());
                apply(&mut image, &records, validate_only, "CreatePartitions");
            }
            3 => {
                let changes: Vec<ConfigChange> = (0..items)
                    .map(|_| ConfigChange {
                        resource: ConfigResource::Topic(choices.name()),
                        ops: (0..choices.below(3))
                            .map(|_| {
                                let op =
                                    choices.pick(&[AlterOp::Set, AlterOp::Delete, AlterOp::Append, AlterOp::Subtract]);
                                let (name, value) = choices.config();
                                (name, op, value)
                            })
                            .collect(),
                    })
                    .collect();
                let (records, outcomes) = incremental_alter_configs(&image, &ctx, &changes, validate_only);
                assert_eq!(outcomes.len(), changes.len());
                apply(&mut image, &records, validate_only, "IncrementalAlterConfigs");
            }
            4 => {
                let legacy: Vec<LegacyConfigs> = (0..items)
                    .map(|_| {
                        (
                            ConfigResource::Topic(choices.name()),
                            (0..choices.below(3)).map(|_| choices.config()).collect(),
                        )
                    })
                    .collect();
                let (records, outcomes) = alter_configs(&image, &ctx, &legacy, validate_only);
                assert_eq!(outcomes.len(), legacy.len());
                apply(&mut image, &records, validate_only, "AlterConfigs");
            }
            5 => {
                let acls: Vec<AclBinding> = (0..items)
                    .map(|_| AclBinding {
                        resource_type: choices.pick(&[0, 1, 2, 3, 4, 5, 6]),
                        resource_name: choices.name(),
                        pattern_type: choices.pick(&[0, 1, 2, 3, 4]),
                        principal: choices.pick(&["User:alice", "User:*", "alice", ""]).to_string(),
                        host: choices.pick(&["*", "127.0.0.1", ""]).to_string(),
                        operation: choices.pick(&[0, 1, 2, 3, 4, 13, 14]),
                        permission: choices.pick(&[0, 1, 2, 3]),
                    })
                    .collect();
                let (records, outcomes) = create_acls(&image, &acls, ctx.new_uuid);
                assert_eq!(outcomes.len(), acls.len());
                apply(&mut image, &records, false, "CreateAcls");
            }
            _ => {
                let partitions: Vec<(String, Vec<i32>)> = (0..items)
                    .map(|_| (choices.name(), (0..choices.below(3)).map(|_| choices.count()).collect()))
                    .collect();
                let all = choices.flag();
                let election_type = choices.pick(&[0_i8, 1, 2, -1]);
                let (records, _) = elect_leaders(&image, election_type, (!all).then_some(partitions.as_slice()));
                apply(&mut image, &records, false, "ElectLeaders");
            }
        }
    }
}
