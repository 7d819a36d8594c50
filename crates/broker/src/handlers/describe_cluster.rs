//! DescribeCluster (key 60), v0-v2.
//!
//! The live brokers reachable on the request's listener (v2 with
//! `include_fenced_brokers`: the fenced ones too, flagged), the cluster id and the
//! active controller's id, from the metadata image ([`crate::cluster_view`]). For
//! endpoint type 2 (controllers, v1+) this node answers as the only controller.
//!
//! Like Kafka (`AuthHelper.computeDescribeClusterResponse`), any client may describe
//! the cluster (Admin.describeCluster works for non-admins): DESCRIBE on the cluster
//! only decides the authorized operations, answered when asked for, and 0 to a
//! client without it.

use crate::broker::Broker;
use crate::cluster_view::{brokers_on_listener, with_own_rack};
use crate::request_context::RequestContext;
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
    context: &RequestContext,
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
    let brokers = if endpoint_type == ENDPOINT_TYPE_BROKERS {
        let include_fenced = header.request_api_version >= 2 && request.include_fenced_brokers;
        let nodes = brokers_on_listener(&broker.image(), context.listener_name(), include_fenced);
        with_own_rack(nodes, broker.node_id, broker.config().broker_rack.as_deref())
            .into_iter()
            .map(|node| DescribeClusterBroker {
                broker_id: node.id,
                host: node.host,
                port: node.port,
                rack: node.rack,
                is_fenced: node.fenced,
                ..DescribeClusterBroker::default()
            })
            .collect()
    } else {
        controllers(broker)
    };
    DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        endpoint_type,
        cluster_id: broker.cluster_id.clone(),
        controller_id: broker.controller_id_for_clients(),
        brokers,
        cluster_authorized_operations: if !request.include_cluster_authorized_operations {
            AUTHORIZED_OPERATIONS_OMITTED
        } else if broker.authorize(context, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
            broker.authorized_operations(context, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME)
        } else {
            0
        },
        ..DescribeClusterResponse::default()
    }
}

/// The controllers, for endpoint type 2: this node, as combined nodes are today,
/// through its first advertised listener.
fn controllers(broker: &Broker) -> Vec<DescribeClusterBroker> {
    broker
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
        .collect()
}
