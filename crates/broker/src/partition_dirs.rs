//! Which topic a partition directory belongs to, and what start-up does with a
//! directory the metadata does not place.
//!
//! Every partition directory holds `partition.metadata`, Kafka's small file naming
//! the topic id it was created for. At start, a directory whose topic the metadata
//! log removed is deleted (the deletion was interrupted); any other directory the
//! metadata does not place (a torn metadata tail, a topic recreated under the same
//! name, a directory copied in by hand) is renamed `<topic>-<partition>.<unique>-stray`
//! and kept, as Kafka keeps stray logs. Data is never deleted because the metadata
//! looks wrong.

use crate::controller::METADATA_TOPIC;
use crate::error::BrokerError;
use gregor_metadata::{MetadataImage, MetadataRecord};
use gregor_protocol::Uuid;
use gregor_storage::{LogManager, TopicPartition};
use std::collections::HashSet;
use std::path::Path;

/// Kafka's name for the file that ties a partition directory to its topic id.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
const PARTITION_METADATA_VERSION: &str = "0";

/// The topic id a partition directory was created for, as its base64 text, or `None`
/// when the file is missing or unreadable (directories made before the file existed).
pub fn stored_topic_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines() {
        match line.split_once(':') {
            Some(("version", value)) => version = Some(value.trim()),
            Some(("topic_id", value)) => topic_id = Some(value.trim()),
            _ => return None,
        }
    }
    (version == Some(PARTITION_METADATA_VERSION)).then_some(())?;
    topic_id.filter(|id| !id.is_empty()).map(str::to_owned)
}

/// Writes `partition.metadata`: when a partition's log is created, and when start-up
/// adopts a directory that has none. It is written through a temporary file and a
/// rename, so it is whole or absent; not fsynced, because a missing file only makes
/// start-up judge the directory by its name.
pub fn record_topic_id(dir: &Path, topic_id: Uuid) -> std::io::Result<()> {
    let temporary = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    std::fs::write(&temporary, format!("version: {PARTITION_METADATA_VERSION}\ntopic_id: {topic_id}\n"))?;
    std::fs::rename(&temporary, dir.join(PARTITION_METADATA_FILE))
}

/// [`record_topic_id`], where failing only costs the next start a judgement by name.
pub fn try_record_topic_id(dir: &Path, tp: &TopicPartition, topic_id: Uuid) {
    if let Err(error) = record_topic_id(dir, topic_id) {
        tracing::warn!("{tp}: cannot write {PARTITION_METADATA_FILE}: {error}");
    }
}

/// The topics the metadata log removed, gathered while it is replayed at start.
#[derive(Debug, Default)]
pub struct RemovedTopics {
    names: HashSet<String>,
    ids: HashSet<String>,
}

impl RemovedTopics {
    /// Notes a removal; call before `record` is replayed into `image`, which still
    /// knows the topic's name then.
    pub fn note(&mut self, image: &MetadataImage, record: &MetadataRecord) {
        if let MetadataRecord::RemoveTopic(removal) = record {
            self.ids.insert(removal.topic_id.to_string());
            if let Some(topic) = image.topic_by_id(removal.topic_id) {
                self.names.insert(topic.name.clone());
            }
        }
    }

    fn removed(&self, topic: &str, stored_id: Option<&str>) -> bool {
        match stored_id {
            Some(id) => self.ids.contains(id),
            None => self.names.contains(topic),
        }
    }
}

/// What start-up does with one partition directory found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The metadata places it: open it.
    Keep,
    /// Its topic was deleted and the deletion did not finish: finish it.
    Delete,
    /// Nothing explains it: keep its data aside.
    SetAside,
}

/// The decision for one directory, from the image, the removals and the id it stores.
pub fn placement(
    image: &MetadataImage,
    removed: &RemovedTopics,
    tp: &TopicPartition,
    stored_id: Option<&str>,
) -> Placement {
    let topic = image.topic(&tp.topic);
    let placed = topic.is_some_and(|topic| {
        topic.partitions.contains_key(&tp.partition) && stored_id.is_none_or(|id| id == topic.id.to_string())
    });
    if placed {
        Placement::Keep
    } else if removed.removed(&tp.topic, stored_id) {
        Placement::Delete
    } else {
        Placement::SetAside
    }
}

/// Deletes or sets aside every directory found on disk that the metadata does not
/// place; must run before the hosted partitions are opened, so that a topic recreated
/// under an old name starts with an empty log rather than the old topic's records.
pub fn sort_found_partitions(
    logs: &LogManager,
    image: &MetadataImage,
    removed: &RemovedTopics,
) -> Result<(), BrokerError> {
    for tp in logs.existing_partitions() {
        if tp.topic == METADATA_TOPIC {
            continue;
        }
        let Some(dir) = logs.partition_dir(&tp) else { continue };
        let stored_id = stored_topic_id(&dir);
        match placement(image, removed, &tp, stored_id.as_deref()) {
            Placement::Keep => {
                // A directory older than the file is adopted by the topic of its name.
                if let (None, Some(topic)) = (&stored_id, image.topic(&tp.topic)) {
                    try_record_topic_id(&dir, &tp, topic.id);
                }
            }
            Placement::Delete => {
                tracing::info!("deleting {tp}: its topic was deleted");
                logs.delete(&tp)?;
            }
            Placement::SetAside => {
                if let Some(aside) = logs.set_aside(&tp)? {
                    tracing::warn!(
                        "{tp} is on disk but the metadata log does not place it (topic id {}); its data is kept \
                         at {} (see README, 'Stray partitions')",
                        stored_id.as_deref().unwrap_or("unknown"),
                        aside.display()
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_metadata::controller::{bootstrap, create_topics, delete_topics, NewTopic, TopicRef};

    fn image_with(names: &[&str]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for record in bootstrap(1, &[("PLAINTEXT".into(), "localhost".into(), 9092)], 1) {
            image.replay(&record).unwrap_or_else(|error| panic!("{error}"));
        }
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|name| NewTopic {
                name: (*name).into(),
                num_partitions: 1,
                replication_factor: 1,
                assignments: vec![],
                configs: vec![],
            })
            .collect();
        let mut next = 10_u128;
        let mut new_uuid = || {
            next += 1;
            Uuid::from_u128(next)
        };
        let validate = |_: &str, _: &str| Ok(());
        let mut ctx = gregor_metadata::controller::ControllerContext {
            node_id: 1,
            default_num_partitions: 1,
            default_replication_factor: 1,
            validate_topic_config: &validate,
            validate_broker_config: &validate,
            validate_group_configs: &|_| Ok(()),
            is_list_config: &|_| false,
            default_value: &|_, _| None,
            new_uuid: &mut new_uuid,
            random: &mut || 0,
        };
        let (records, _) = create_topics(&image, &mut ctx, &topics, false);
        for record in &records {
            image.replay(record).unwrap_or_else(|error| panic!("{error}"));
        }
        image
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    #[test]
    fn only_a_deleted_topic_loses_its_directory() {
        let mut image = image_with(&["kept", "gone"]);
        let kept_id = image.topic("kept").map(|topic| topic.id.to_string());
        let gone_id = image.topic("gone").map(|topic| topic.id.to_string());
        let mut removed = RemovedTopics::default();
        let (records, _) = delete_topics(&image, &[TopicRef::Name("gone".into())]);
        for record in &records {
            removed.note(&image, record);
            image.replay(record).unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(placement(&image, &removed, &tp("kept", 0), kept_id.as_deref()), Placement::Keep);
        assert_eq!(placement(&image, &removed, &tp("kept", 0), None), Placement::Keep);
        assert_eq!(placement(&image, &removed, &tp("gone", 0), gone_id.as_deref()), Placement::Delete);
        assert_eq!(placement(&image, &removed, &tp("gone", 0), None), Placement::Delete);
        // A partition the topic does not have, another topic's id under a known name,
        // and a name the log never mentioned are kept aside.
        assert_eq!(placement(&image, &removed, &tp("kept", 1), kept_id.as_deref()), Placement::SetAside);
        assert_eq!(placement(&image, &removed, &tp("kept", 0), Some("AAAAAAAAAAAAAAAAAAAAAA")), Placement::SetAside);
        assert_eq!(placement(&image, &removed, &tp("forgotten", 0), None), Placement::SetAside);
    }

    #[test]
    fn partition_metadata_round_trips_and_garbage_reads_as_unknown() {
        let dir = std::env::temp_dir().join(format!("gregor-partition-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(stored_topic_id(&dir), None);
        let id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        record_topic_id(&dir, id).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(stored_topic_id(&dir), Some(id.to_string()));
        for garbage in ["", "version: 1\ntopic_id: abc\n", "\u{0}\u{1}binary", "version: 0\n"] {
            std::fs::write(dir.join(PARTITION_METADATA_FILE), garbage).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(stored_topic_id(&dir), None, "{garbage:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
