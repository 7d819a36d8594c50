//! The cluster admin APIs a single broker serves: ListPartitionReassignments,
//! AlterPartitionReassignments and UnregisterBroker, as raw requests (as Kafka's
//! `kafka-reassign-partitions.sh` and `kafka-cluster.sh unregister` send them).

use anyhow::{ensure, Result};
use gregor_integration_tests::expect_response;
use gregor_integration_tests::group_wire::{check_code, Conn};
use gregor_integration_tests::{rdk, BrokerProcess};
use gregor_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use gregor_protocol::messages::unregister_broker_request::UnregisterBrokerRequest;
use gregor_protocol::{ApiKey, ErrorCode};

const TOPIC: &str = "reassign";
const NODE_ID: i32 = 1;

fn partition(index: i32, replicas: Option<Vec<i32>>) -> ReassignablePartition {
    ReassignablePartition { partition_index: index, replicas, ..Default::default() }
}

fn list(conn: &mut Conn, topics: Option<Vec<ListPartitionReassignmentsTopics>>) -> Result<usize> {
    let request = ListPartitionReassignmentsRequest { timeout_ms: 30_000, topics, ..Default::default() };
    let response = expect_response!(conn.call(request, 0)?, ListPartitionReassignments);
    check_code(response.error_code, ErrorCode::None, "ListPartitionReassignments")?;
    Ok(response.topics.len())
}

#[test]
fn reassignment_and_unregister_apis_answer_as_kafka_on_one_broker() -> Result<()> {
    let node_id = NODE_ID.to_string();
    let broker = BrokerProcess::start(&[("node.id", node_id.as_str())])?;
    let bootstrap = broker.bootstrap();
    rdk::create_topic(&bootstrap, TOPIC, 2, &[])?;
    let mut conn = Conn::new(&bootstrap)?;

    // Advertised at v0 only.
    let versions = expect_response!(conn.call(ApiVersionsRequest::default(), 0)?, ApiVersions);
    for key in [ApiKey::AlterPartitionReassignments, ApiKey::ListPartitionReassignments, ApiKey::UnregisterBroker] {
        let entry = versions.api_keys.iter().find(|entry| entry.api_key == key as i16);
        ensure!(entry.is_some_and(|entry| (entry.min_version, entry.max_version) == (0, 0)), "{key:?}: {entry:?}");
    }

    // Nothing is moving, listed whole or by partition.
    ensure!(list(&mut conn, None)? == 0, "no reassignment expected");
    let named =
        ListPartitionReassignmentsTopics { name: TOPIC.into(), partition_indexes: vec![0, 1], ..Default::default() };
    ensure!(list(&mut conn, Some(vec![named.clone()]))? == 0, "no reassignment expected");

    let request = AlterPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        topics: vec![
            ReassignableTopic {
                name: TOPIC.into(),
                partitions: vec![
                    partition(0, Some(vec![NODE_ID, 2])),
                    partition(1, None),
                    partition(0, Some(vec![NODE_ID])),
                ],
                ..Default::default()
            },
            ReassignableTopic {
                name: "missing".into(),
                partitions: vec![partition(0, Some(vec![NODE_ID]))],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, 0)?, AlterPartitionReassignments);
    check_code(response.error_code, ErrorCode::None, "AlterPartitionReassignments")?;
    let results: Vec<(String, i32, i16, Option<String>)> = response
        .responses
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (topic.name.clone(), partition.partition_index, partition.error_code, partition.error_message.clone())
            })
        })
        .collect();
    let expected = vec![
        (
            TOPIC.to_string(),
            0,
            ErrorCode::InvalidReplicaAssignment.code(),
            Some("The manual partition assignment includes broker 2, but no such broker is registered.".to_string()),
        ),
        (
            TOPIC.to_string(),
            1,
            ErrorCode::NoReassignmentInProgress.code(),
            Some(ErrorCode::NoReassignmentInProgress.message().to_string()),
        ),
        (TOPIC.to_string(), 0, ErrorCode::None.code(), None),
        (
            "missing".to_string(),
            0,
            ErrorCode::UnknownTopicOrPartition.code(),
            Some("Unable to find a topic named missing.".to_string()),
        ),
    ];
    ensure!(results == expected, "AlterPartitionReassignments results: {results:?}");
    ensure!(list(&mut conn, Some(vec![named]))? == 0, "a reassignment onto the current replicas completes at once");

    // An id no broker registered; the broker's own registration is left alone.
    let response = expect_response!(
        conn.call(UnregisterBrokerRequest { broker_id: 7, ..Default::default() }, 0)?,
        UnregisterBroker
    );
    check_code(response.error_code, ErrorCode::BrokerIdNotRegistered, "UnregisterBroker")?;
    ensure!(response.error_message.is_none(), "Kafka sends only the code: {:?}", response.error_message);
    Ok(())
}

#[test]
fn cluster_admin_apis_need_their_cluster_permission() -> Result<()> {
    use gregor_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
    let broker = BrokerProcess::start(&[
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("allow.everyone.if.no.acl.found", "true"),
    ])?;
    let bootstrap = broker.bootstrap();
    rdk::create_topic(&bootstrap, TOPIC, 1, &[])?;
    let mut conn = Conn::new(&bootstrap)?;
    // Deny the anonymous client ALTER and DESCRIBE on the cluster (ids as Kafka's
    // AclOperation: ALTER 7, DESCRIBE 8; resource CLUSTER 4, LITERAL 3, DENY 2).
    let deny = |operation: i8| AclCreation {
        resource_type: 4,
        resource_name: "kafka-cluster".into(),
        resource_pattern_type: 3,
        principal: "User:ANONYMOUS".into(),
        host: "*".into(),
        operation,
        permission_type: 2,
        ..Default::default()
    };
    let created = expect_response!(
        conn.call(CreateAclsRequest { creations: vec![deny(7), deny(8)], ..Default::default() }, 3)?,
        CreateAcls
    );
    for result in &created.results {
        check_code(result.error_code, ErrorCode::None, "CreateAcls")?;
    }

    let request = ListPartitionReassignmentsRequest { timeout_ms: 30_000, topics: None, ..Default::default() };
    let listed = expect_response!(conn.call(request, 0)?, ListPartitionReassignments);
    check_code(listed.error_code, ErrorCode::ClusterAuthorizationFailed, "ListPartitionReassignments")?;

    let request = AlterPartitionReassignmentsRequest {
        timeout_ms: 30_000,
        topics: vec![ReassignableTopic {
            name: TOPIC.into(),
            partitions: vec![partition(0, Some(vec![NODE_ID]))],
            ..Default::default()
        }],
        ..Default::default()
    };
    let altered = expect_response!(conn.call(request, 0)?, AlterPartitionReassignments);
    check_code(altered.error_code, ErrorCode::ClusterAuthorizationFailed, "AlterPartitionReassignments")?;
    let codes: Vec<i16> =
        altered.responses.iter().flat_map(|topic| topic.partitions.iter().map(|p| p.error_code)).collect();
    ensure!(codes == vec![ErrorCode::ClusterAuthorizationFailed.code()], "partition codes {codes:?}");

    let request = UnregisterBrokerRequest { broker_id: NODE_ID, ..Default::default() };
    let unregistered = expect_response!(conn.call(request, 0)?, UnregisterBroker);
    check_code(unregistered.error_code, ErrorCode::ClusterAuthorizationFailed, "UnregisterBroker")?;
    Ok(())
}
