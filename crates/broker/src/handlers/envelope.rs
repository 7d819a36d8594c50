//! Envelope (key 58), v0, on the controller listener only.
//!
//! A broker that is not the active controller forwards a client's controller
//! request (CreateTopics, configs, ACLs, ...) in an Envelope with the client's
//! principal and address; the active controller handles the inner request as if
//! the client had sent it and returns the encoded answer. A request that is not
//! one Kafka forwards, or that does not decode, is refused with INVALID_REQUEST.

use crate::broker::Broker;
use crate::dispatch::{dispatch, is_forwarded_to_controller, Outcome};
use crate::request_context::ConnectionContext;
use gregor_protocol::frame::{decode_request, encode_response_frame};
use gregor_protocol::messages::{EnvelopeRequest, EnvelopeResponse};
use gregor_protocol::ErrorCode;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, request: EnvelopeRequest) -> EnvelopeResponse {
    let refuse = |code: ErrorCode| EnvelopeResponse { error_code: code.code(), ..EnvelopeResponse::default() };
    let client_ip = match request.client_host_address.len() {
        4 => <[u8; 4]>::try_from(&request.client_host_address[..]).map(IpAddr::from).ok(),
        16 => <[u8; 16]>::try_from(&request.client_host_address[..]).map(IpAddr::from).ok(),
        _ => None,
    };
    let Some(client_ip) = client_ip else { return refuse(ErrorCode::InvalidRequest) };
    let inner = match decode_request(request.request_data) {
        Ok(inner) if is_forwarded_to_controller(inner.api_key) => inner,
        _ => return refuse(ErrorCode::InvalidRequest),
    };
    let correlation_id = inner.header.correlation_id;
    let version = inner.header.request_api_version;
    let client = SocketAddr::new(client_ip, 0);
    // The inner request's own handler runs with the client's address, so that
    // host-based ACLs judge the client, not the forwarding broker.
    let listener = broker.endpoints.first().map_or("PLAINTEXT", |endpoint| endpoint.listener_name.as_str());
    let connection = Arc::new(ConnectionContext::new(listener, "PLAINTEXT", client));
    let outcome = Box::pin(dispatch(broker, inner, &connection)).await;
    let body = match outcome {
        Outcome::Respond(body) => body,
        _ => return refuse(ErrorCode::UnknownServerError),
    };
    match encode_response_frame(correlation_id, version, &body) {
        Ok(frame) => {
            // The envelope carries the response without its size prefix.
            let bytes = frame.freeze();
            EnvelopeResponse { response_data: Some(bytes.slice(4..)), ..EnvelopeResponse::default() }
        }
        Err(_) => refuse(ErrorCode::UnknownServerError),
    }
}
