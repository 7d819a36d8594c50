//! The control-plane calls of a run: where a topic's partitions lead, creating
//! the topic, the group coordinator, and start offsets.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use gregor_protocol::messages::create_topics_request::CreatableTopic;
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::{CreateTopicsRequest, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest};
use gregor_protocol::{ApiKey, ErrorCode, ResponseBody, Uuid};

use crate::conn::Connection;
use crate::error::PerfError;

/// How long a new topic may take to get a leader for every partition.
const TOPIC_READY_TIMEOUT_MS: u64 = 30_000;
const TOPIC_READY_POLL_MS: u64 = 50;
/// ListOffsets' special timestamps.
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;

/// One partition and the node that leads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    pub index: i32,
    pub leader: i32,
}

/// What Metadata says about one topic.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    /// [`Uuid::ZERO`] when the broker's Metadata version carries no topic ids.
    pub id: Uuid,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
    /// `host:port` of every node, by node id.
    pub brokers: HashMap<i32, String>,
}

impl TopicInfo {
    /// The partitions each leader leads, by node id.
    pub fn by_leader(&self) -> BTreeMap<i32, Vec<i32>> {
        let mut leaders: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for partition in &self.partitions {
            leaders.entry(partition.leader).or_default().push(partition.index);
        }
        leaders
    }

    pub fn leader_of(&self, partition: i32) -> Option<i32> {
        self.partitions.iter().find(|info| info.index == partition).map(|info| info.leader)
    }

    pub fn address_of(&self, node_id: i32) -> Result<&str, PerfError> {
        self.brokers.get(&node_id).map(String::as_str).ok_or_else(|| PerfError::Broker {
            what: format!("Metadata names node {node_id} as a leader of {} but lists no such broker", self.name),
            code: ErrorCode::LeaderNotAvailable.code(),
        })
    }

    fn has_every_leader(&self) -> bool {
        !self.partitions.is_empty()
            && self.partitions.iter().all(|partition| self.brokers.contains_key(&partition.leader))
    }
}

/// Where a consumer starts when it has no position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// The topic as Metadata describes it, `None` when the broker does not know it.
pub async fn describe_topic(connection: &mut Connection, topic: &str) -> Result<Option<TopicInfo>, PerfError> {
    let version = connection.versions().pick(ApiKey::Metadata, 1, 12)?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic { name: Some(topic.to_owned()), ..Default::default() }]),
        // The tool creates topics itself, with the partition count it was asked for;
        // before v4 the field does not exist and must keep its default.
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    };
    let ResponseBody::Metadata(answer) = connection.call(request, version).await? else {
        return Err(PerfError::protocol(connection.address(), "Metadata answered with another API"));
    };
    let Some(found) = answer.topics.into_iter().find(|entry| entry.name.as_deref() == Some(topic)) else {
        return Ok(None);
    };
    if found.error_code == ErrorCode::UnknownTopicOrPartition.code() {
        return Ok(None);
    }
    if found.error_code != ErrorCode::None.code() && found.error_code != ErrorCode::LeaderNotAvailable.code() {
        return Err(PerfError::broker(format!("Metadata for topic {topic}"), found.error_code));
    }
    let mut partitions: Vec<PartitionInfo> = found
        .partitions
        .iter()
        .map(|partition| PartitionInfo { index: partition.partition_index, leader: partition.leader_id })
        .collect();
    partitions.sort_by_key(|partition| partition.index);
    let brokers =
        answer.brokers.iter().map(|broker| (broker.node_id, join_host_port(&broker.host, broker.port))).collect();
    Ok(Some(TopicInfo { name: topic.to_owned(), id: found.topic_id, partitions, brokers }))
}

/// `host:port`, with brackets around an IPv6 host.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The topic, created with `partitions` (default 1) when it does not exist, once
/// every partition has a leader. An existing topic keeps its partition count.
pub async fn ensure_topic(
    connection: &mut Connection,
    topic: &str,
    partitions: Option<i32>,
) -> Result<TopicInfo, PerfError> {
    if describe_topic(connection, topic).await?.is_none() {
        create_topic(connection, topic, partitions.unwrap_or(1)).await?;
    }
    let deadline = Instant::now() + Duration::from_millis(TOPIC_READY_TIMEOUT_MS);
    loop {
        if let Some(info) = describe_topic(connection, topic).await? {
            if info.has_every_leader() {
                if let Some(asked) =
                    partitions.filter(|asked| usize::try_from(*asked).ok() != Some(info.partitions.len()))
                {
                    eprintln!(
                        "note: topic {topic} exists with {} partitions (not {asked}); using them",
                        info.partitions.len()
                    );
                }
                return Ok(info);
            }
        }
        if Instant::now() >= deadline {
            return Err(PerfError::Timeout {
                what: format!("waiting for topic {topic} to have a leader for every partition"),
                timeout_ms: TOPIC_READY_TIMEOUT_MS,
            });
        }
        tokio::time::sleep(Duration::from_millis(TOPIC_READY_POLL_MS)).await;
    }
}

async fn create_topic(connection: &mut Connection, topic: &str, partitions: i32) -> Result<(), PerfError> {
    let version = connection.versions().pick(ApiKey::CreateTopics, 2, 7)?;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.to_owned(),
            num_partitions: partitions,
            // -1 (the broker's default) exists from v4 on.
            replication_factor: if version >= 4 { -1 } else { 1 },
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let ResponseBody::CreateTopics(answer) = connection.call(request, version).await? else {
        return Err(PerfError::protocol(connection.address(), "CreateTopics answered with another API"));
    };
    for result in answer.topics {
        // Another producer of the same run may have created it first.
        if result.error_code != ErrorCode::None.code() && result.error_code != ErrorCode::TopicAlreadyExists.code() {
            return Err(PerfError::broker(format!("creating topic {topic}"), result.error_code));
        }
    }
    Ok(())
}

/// `host:port` of the coordinator of consumer group `group`.
pub async fn find_group_coordinator(connection: &mut Connection, group: &str) -> Result<String, PerfError> {
    let version = connection.versions().pick(ApiKey::FindCoordinator, 0, 6)?;
    let mut request = FindCoordinatorRequest::default();
    if version >= 4 {
        request.coordinator_keys = vec![group.to_owned()];
    } else {
        request.key = group.to_owned();
    }
    let ResponseBody::FindCoordinator(answer) = connection.call(request, version).await? else {
        return Err(PerfError::protocol(connection.address(), "FindCoordinator answered with another API"));
    };
    let (code, host, port) = if version >= 4 {
        let coordinator =
            answer.coordinators.into_iter().find(|coordinator| coordinator.key == group).ok_or_else(|| {
                PerfError::protocol(connection.address(), format!("FindCoordinator without group {group}"))
            })?;
        (coordinator.error_code, coordinator.host, coordinator.port)
    } else {
        (answer.error_code, answer.host, answer.port)
    };
    if code != ErrorCode::None.code() {
        return Err(PerfError::broker(format!("finding the coordinator of group {group}"), code));
    }
    Ok(join_host_port(&host, port))
}

/// The earliest or latest offset of each partition, or the partition's error code.
pub async fn list_offsets(
    connection: &mut Connection,
    topic: &str,
    partitions: &[i32],
    from: StartFrom,
) -> Result<Vec<(i32, Result<i64, i16>)>, PerfError> {
    let version = connection.versions().pick(ApiKey::ListOffsets, 1, 11)?;
    let timestamp = match from {
        StartFrom::Earliest => EARLIEST_TIMESTAMP,
        StartFrom::Latest => LATEST_TIMESTAMP,
    };
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_owned(),
            partitions: partitions
                .iter()
                .map(|&partition_index| ListOffsetsPartition { partition_index, timestamp, ..Default::default() })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: if version >= 10 { 30_000 } else { 0 },
        ..Default::default()
    };
    let ResponseBody::ListOffsets(answer) = connection.call(request, version).await? else {
        return Err(PerfError::protocol(connection.address(), "ListOffsets answered with another API"));
    };
    let mut offsets = Vec::new();
    for topic_answer in answer.topics {
        for partition in topic_answer.partitions {
            let offset = if partition.error_code == ErrorCode::None.code() {
                Ok(partition.offset)
            } else {
                Err(partition.error_code)
            };
            offsets.push((partition.partition_index, offset));
        }
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(join_host_port("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(join_host_port("::1", 9092), "[::1]:9092");
    }

    #[test]
    fn partitions_group_by_leader() {
        let info = TopicInfo {
            name: "t".into(),
            id: Uuid::ZERO,
            partitions: vec![
                PartitionInfo { index: 0, leader: 1 },
                PartitionInfo { index: 1, leader: 2 },
                PartitionInfo { index: 2, leader: 1 },
            ],
            brokers: HashMap::from([(1, "a:1".to_owned()), (2, "b:2".to_owned())]),
        };
        assert_eq!(info.by_leader(), BTreeMap::from([(1, vec![0, 2]), (2, vec![1])]));
        assert!(info.has_every_leader());
        assert!(info.address_of(3).is_err());
    }
}
