//! DescribeLogDirs (key 35), v1-v5.
//!
//! Each log dir with the partitions in it and their sizes (all of them when the
//! topic list is null, else those named); v3+ a top-level error; v4+ total and
//! usable bytes of the dir's file system. A single node has no replica lag, so every
//! offset lag is 0; nothing is a future replica. Needs DESCRIBE on the cluster: else
//! no directories, and from v3 CLUSTER_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !broker.authorize(context, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return DescribeLogDirsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..DescribeLogDirsResponse::default()
        };
    }
    let logs = Arc::clone(&broker.logs);
    let dirs = match tokio::task::spawn_blocking(move || logs.describe_log_dirs()).await {
        Ok(dirs) => dirs,
        Err(error) => {
            tracing::error!("describe log dirs task failed: {error}");
            return DescribeLogDirsResponse { error_code: ErrorCode::UnknownServerError.code(), ..Default::default() };
        }
    };
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics.iter().any(|wanted| wanted.topic == topic && wanted.partitions.contains(&partition)),
    };
    let results = dirs
        .into_iter()
        .map(|dir| {
            let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for partition in
                dir.partitions.iter().filter(|p| p.topic_partition.topic != crate::controller::METADATA_TOPIC)
            {
                if !wanted(&partition.topic_partition.topic, partition.topic_partition.partition) {
                    continue;
                }
                topics.entry(partition.topic_partition.topic.clone()).or_default().push(DescribeLogDirsPartition {
                    partition_index: partition.topic_partition.partition,
                    partition_size: i64::try_from(partition.size_bytes).unwrap_or(i64::MAX),
                    offset_lag: 0,
                    is_future_key: false,
                    ..DescribeLogDirsPartition::default()
                });
            }
            DescribeLogDirsResult {
                error_code: ErrorCode::None.code(),
                log_dir: dir.path.display().to_string(),
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| DescribeLogDirsTopic { name, partitions, ..Default::default() })
                    .collect(),
                total_bytes: i64::try_from(dir.total_bytes).unwrap_or(-1),
                usable_bytes: i64::try_from(dir.usable_bytes).unwrap_or(-1),
                is_cordoned: false,
                ..DescribeLogDirsResult::default()
            }
        })
        .collect();
    DescribeLogDirsResponse { throttle_time_ms: 0, error_code: ErrorCode::None.code(), results, ..Default::default() }
}
