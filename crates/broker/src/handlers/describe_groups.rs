//! DescribeGroups (key 15), v0-v6.
//!
//! Classic groups: state, protocol, members (metadata and assignment in Stable), each
//! from the shard that owns the group (`gregor_group::admin`). v3+ may ask for the
//! authorized operations, which without an authorizer are every group operation.

use crate::authorization::Session;
use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::topics::AUTHORIZED_OPERATIONS_OMITTED;
use gregor_metadata::acl::resource_type;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};
use gregor_protocol::messages::RequestHeader;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let client = ClientSource::new(header, peer);
    let with_operations = request.include_authorized_operations && header.request_api_version >= 3;
    let session = Session::from_peer(peer);
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let read = broker.groups.read(broker, &client.context(), &group_id, |shard, context, _| {
                shard.describe_group(context, &group_id)
            });
            let mut described = read.unwrap_or_else(|code| DescribedGroup {
                error_code: code.code(),
                group_id: group_id.clone(),
                ..DescribedGroup::default()
            });
            described.authorized_operations = if with_operations {
                broker.authorized_operations(&session, resource_type::GROUP, &group_id)
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            };
            described
        })
        .collect();
    DescribeGroupsResponse { groups, ..DescribeGroupsResponse::default() }
}
