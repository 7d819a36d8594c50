//! The partitions this node leads (Kafka's replica manager): each partition's log,
//! its leader epoch and its purgatory wait list, found by topic name or topic id
//! without taking a lock on the produce or fetch path beyond a short read lock.

use crate::purgatory::WaitList;
use gregor_protocol::Uuid;
use gregor_storage::{AppendError, AppendInfo, Log, TxnMarker};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

/// One partition led by this node.
#[derive(Debug)]
pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    pub topic_id: Uuid,
    pub log: Arc<Log>,
    leader_epoch: AtomicI32,
    pub waiters: WaitList,
}

impl Partition {
    pub fn new(topic: Arc<str>, index: i32, topic_id: Uuid, log: Arc<Log>, leader_epoch: i32) -> Self {
        Partition {
            topic,
            index,
            topic_id,
            log,
            leader_epoch: AtomicI32::new(leader_epoch),
            waiters: WaitList::default(),
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn set_leader_epoch(&self, leader_epoch: i32) {
        self.leader_epoch.store(leader_epoch, Ordering::Release);
    }

    /// Writes a transaction's COMMIT or ABORT marker at the current leader epoch
    /// (WriteTxnMarkers' per-partition step) and wakes the fetches waiting on
    /// this partition: the marker moves the last stable offset, which is what a
    /// read_committed fetch waits for. Blocking file I/O: call it off the reactor.
    pub fn append_marker(&self, marker: TxnMarker, now_ms: i64) -> Result<AppendInfo, AppendError> {
        let info = self.log.append_transaction_marker(marker, self.leader_epoch(), now_ms)?;
        self.waiters.wake_all();
        Ok(info)
    }
}

#[derive(Debug, Default)]
struct Topics {
    by_name: HashMap<Arc<str>, TopicPartitions>,
    name_by_id: HashMap<Uuid, Arc<str>>,
}

#[derive(Debug, Clone)]
struct TopicPartitions {
    id: Uuid,
    partitions: Vec<Option<Arc<Partition>>>,
}

/// Every partition this node hosts.
#[derive(Debug, Default)]
pub struct ReplicaManager {
    topics: RwLock<Topics>,
}

impl ReplicaManager {
    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let topics = self.topics.read().ok()?;
        let slot = topics.by_name.get(topic)?.partitions.get(usize::try_from(index).ok()?)?;
        slot.clone()
    }

    pub fn get_by_id(&self, topic_id: Uuid, index: i32) -> Option<Arc<Partition>> {
        let topics = self.topics.read().ok()?;
        let name = topics.name_by_id.get(&topic_id)?;
        let slot = topics.by_name.get(name)?.partitions.get(usize::try_from(index).ok()?)?;
        slot.clone()
    }

    /// The name of the topic with `topic_id`, if this node hosts it.
    pub fn topic_name(&self, topic_id: Uuid) -> Option<Arc<str>> {
        self.topics.read().ok()?.name_by_id.get(&topic_id).cloned()
    }

    pub fn contains_topic(&self, topic: &str) -> bool {
        self.topics.read().map(|topics| topics.by_name.contains_key(topic)).unwrap_or(false)
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        let Ok(topics) = self.topics.read() else { return Vec::new() };
        topics.by_name.values().flat_map(|topic| topic.partitions.iter().flatten().cloned()).collect()
    }

    pub fn insert(&self, partition: Arc<Partition>) {
        let Ok(mut topics) = self.topics.write() else { return };
        let Ok(index) = usize::try_from(partition.index) else { return };
        topics.name_by_id.insert(partition.topic_id, Arc::clone(&partition.topic));
        let entry = topics
            .by_name
            .entry(Arc::clone(&partition.topic))
            .or_insert_with(|| TopicPartitions { id: partition.topic_id, partitions: Vec::new() });
        entry.id = partition.topic_id;
        if entry.partitions.len() <= index {
            entry.partitions.resize(index + 1, None);
        }
        entry.partitions[index] = Some(partition);
    }

    /// Removes a topic and returns its partitions, so the caller can delete their logs.
    pub fn remove_topic(&self, topic: &str) -> Vec<Arc<Partition>> {
        let Ok(mut topics) = self.topics.write() else { return Vec::new() };
        let Some(removed) = topics.by_name.remove(topic) else { return Vec::new() };
        topics.name_by_id.remove(&removed.id);
        removed.partitions.into_iter().flatten().collect()
    }

    pub fn topic_names(&self) -> Vec<Arc<str>> {
        self.topics.read().map(|topics| topics.by_name.keys().cloned().collect()).unwrap_or_default()
    }
}
