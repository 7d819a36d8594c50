//! DescribeCluster (key 60), v0-v2.
//!
//! This node as the only broker (and, for endpoint type 2 from v1, the only
//! controller), the cluster id, and the controller id. v2 adds fenced brokers, of
//! which a running single node has none.
//!
//! Like Kafka (`AuthHelper.computeDescribeClusterResponse`), any client may describe
//! the cluster (Admin.describeCluster works for non-admins): DESCRIBE on the cluster
//! only decides the authorized operations, answered when asked for, and 0 to a
//! client without it.

use crate::authorization::Session;
use crate::broker::Broker;
use crate::topics::AUTHORIZED_OPERATIONS_OMITTED;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

const ENDPOINT_TYPE_BROKERS: i8 = 1;
const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    session: &Session,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let endpoint_type = if header.request_api_version >= 1 { request.endpoint_type } else { ENDPOINT_TYPE_BROKERS };
    if endpoint_type != ENDPOINT_TYPE_BROKERS && endpoint_type != ENDPOINT_TYPE_CONTROLLERS {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedEndpointType.code(),
            error_message: Some(format!("endpoint type {endpoint_type} is not known")),
            endpoint_type,
            ..DescribeClusterResponse::default()
        };
    }
    let brokers = broker
        .endpoints
        .first()
        .map(|endpoint| DescribeClusterBroker {
            broker_id: broker.node_id,
            host: endpoint.host.clone(),
            port: i32::from(endpoint.port),
            rack: broker.config().broker_rack.clone(),
            is_fenced: false,
            ..DescribeClusterBroker::default()
        })
        .into_iter()
        .collect();
    DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        endpoint_type,
        cluster_id: broker.cluster_id.clone(),
        controller_id: broker.node_id,
        brokers,
        cluster_authorized_operations: if !request.include_cluster_authorized_operations {
            AUTHORIZED_OPERATIONS_OMITTED
        } else if broker.authorize(session, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
            broker.authorized_operations(session, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME)
        } else {
            0
        },
        ..DescribeClusterResponse::default()
    }
}
