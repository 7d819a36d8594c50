//! AddPartitionsToTxn (key 24), v0-v5.
//!
//! v0-v3 (clients, librdkafka's v0 included) carry one transaction, decided by the
//! transaction coordinator shard of its transactional id (`gregor_txn::add_partitions`).
//! v4+ (brokers verifying a transactional produce, KIP-890) carry a batch of
//! transactions that may belong to different shards: each is decided on its own shard
//! and the results are gathered in request order. A partition that does not exist
//! answers UNKNOWN_TOPIC_OR_PARTITION (the rest of its transaction
//! OPERATION_NOT_ATTEMPTED). A request the coordinator cannot serve answers its error
//! (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...) on every partition.
//!
//! With an authorizer: v0-v3 need WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on every topic (else those topics are
//! TOPIC_AUTHORIZATION_FAILED and the rest OPERATION_NOT_ATTEMPTED); v4+ batches need
//! CLUSTER_ACTION on the cluster.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use gregor_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

/// The first batched version.
const BATCHED_SINCE_VERSION: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let version = header.request_api_version;
    let access = broker.access(context);
    if version < BATCHED_SINCE_VERSION {
        let transactional_id = request.v3_and_below_transactional_id.clone();
        let topics = request.v3_and_below_topics.clone();
        if !access.allows_transactional_id(operation::WRITE, &transactional_id) {
            return AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: every_partition(&topics, ErrorCode::TransactionalIdAuthorizationFailed),
                ..AddPartitionsToTxnResponse::default()
            };
        }
        // One topic the producer may not write fails it; the others are not attempted.
        if topics.iter().any(|topic| !access.allows_topic(operation::WRITE, &topic.name)) {
            let results = topics
                .iter()
                .flat_map(|topic| {
                    let code = if access.allows_topic(operation::WRITE, &topic.name) {
                        ErrorCode::OperationNotAttempted
                    } else {
                        ErrorCode::TopicAuthorizationFailed
                    };
                    every_partition(std::slice::from_ref(topic), code)
                })
                .collect();
            return AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: results,
                ..AddPartitionsToTxnResponse::default()
            };
        }
        return match decide(broker, version, &transactional_id, request).await {
            Ok(response) => response,
            Err(code) => AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: every_partition(&topics, code),
                ..AddPartitionsToTxnResponse::default()
            },
        };
    }
    // v4+ batches come from brokers verifying their partitions.
    if !access.allows_cluster(operation::CLUSTER_ACTION) {
        return AddPartitionsToTxnResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..AddPartitionsToTxnResponse::default()
        };
    }
    let mut response = AddPartitionsToTxnResponse::default();
    for transaction in request.transactions {
        let transactional_id = transaction.transactional_id.clone();
        let topics = transaction.topics.clone();
        let single =
            AddPartitionsToTxnRequest { transactions: vec![transaction], ..AddPartitionsToTxnRequest::default() };
        let result = match decide(broker, version, &transactional_id, single).await {
            Ok(mut decided) if !decided.results_by_transaction.is_empty() => decided.results_by_transaction.remove(0),
            Ok(_) => failed_transaction(transactional_id, &topics, ErrorCode::UnknownServerError),
            Err(code) => failed_transaction(transactional_id, &topics, code),
        };
        response.results_by_transaction.push(result);
    }
    response
}

async fn decide(
    broker: &Arc<Broker>,
    version: i16,
    transactional_id: &str,
    request: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, ErrorCode> {
    let image = broker.image();
    let decided = broker
        .txns
        .decide(broker, version, transactional_id, move |shard, context| {
            let exists = |topic: &str, partition: i32| {
                image.topic(topic).is_some_and(|topic| topic.partitions.contains_key(&partition))
            };
            shard.add_partitions_to_txn(context, request, &exists)
        })
        .await?;
    match decided {
        ResponseBody::AddPartitionsToTxn(response) => Ok(response),
        _ => Err(ErrorCode::UnknownServerError),
    }
}

fn failed_transaction(
    transactional_id: String,
    topics: &[AddPartitionsToTxnTopic],
    code: ErrorCode,
) -> AddPartitionsToTxnResult {
    AddPartitionsToTxnResult {
        transactional_id,
        topic_results: every_partition(topics, code),
        ..AddPartitionsToTxnResult::default()
    }
}

/// The results that give every requested partition `code`.
fn every_partition(topics: &[AddPartitionsToTxnTopic], code: ErrorCode) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| AddPartitionsToTxnTopicResult {
            name: topic.name.clone(),
            results_by_partition: topic
                .partitions
                .iter()
                .map(|&partition_index| AddPartitionsToTxnPartitionResult {
                    partition_index,
                    partition_error_code: code.code(),
                    ..AddPartitionsToTxnPartitionResult::default()
                })
                .collect(),
            ..AddPartitionsToTxnTopicResult::default()
        })
        .collect()
}
