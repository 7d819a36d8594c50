//! UnregisterBroker (key 64), v0.
//!
//! Removes a broker's registration, after moving it out of every ISR and leadership.
//! An id that is not registered answers BROKER_ID_NOT_REGISTERED. Needs ALTER on the
//! cluster, else CLUSTER_AUTHORIZATION_FAILED. As in Kafka, only the code is sent.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::brokers::unregister_broker;
use gregor_protocol::messages::unregister_broker_request::UnregisterBrokerRequest;
use gregor_protocol::messages::unregister_broker_response::UnregisterBrokerResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let error = if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        ErrorCode::ClusterAuthorizationFailed
    } else {
        let broker_id = request.broker_id;
        match broker.decide(move |image, _context| unregister_broker(image, broker_id)).await {
            Ok(Ok(())) => ErrorCode::None,
            Ok(Err(error)) => error.code,
            Err(error) => error.error_code(),
        }
    };
    UnregisterBrokerResponse {
        throttle_time_ms: 0,
        error_code: error.code(),
        error_message: None,
        ..UnregisterBrokerResponse::default()
    }
}
