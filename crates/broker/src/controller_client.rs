//! Requests from this node to the active controller, on the controller listener:
//! broker registration and heartbeats, and client requests that only the
//! controller may decide, forwarded in an Envelope (as Kafka brokers forward
//! them) so that the controller sees the client's principal and address.
//! The active controller is the quorum's leader, found in the quorum's view and
//! followed when it moves.

use crate::broker::Broker;
use crate::error::BrokerError;
use bytes::Bytes;
use gregor_perf::conn::Connection;
use gregor_protocol::messages::EnvelopeRequest;
use gregor_protocol::{ErrorCode, RequestBody, ResponseBody};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long to wait between attempts while no controller answers.
const RETRY_BACKOFF: Duration = Duration::from_millis(25);
/// How long a forwarded request may wait for an active controller: Kafka clients'
/// default request.timeout.ms.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct ControllerClient {
    /// One connection to the controller we last used, and its id.
    connection: tokio::sync::Mutex<Option<(i32, Connection)>>,
}

impl ControllerClient {
    /// Sends `body` to the active controller and returns its answer, retrying
    /// (another controller, a lost connection, NOT_CONTROLLER) until `timeout`.
    pub async fn call(
        &self,
        broker: &Broker,
        body: RequestBody,
        version: i16,
        timeout: Duration,
    ) -> Result<ResponseBody, BrokerError> {
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("no active controller is known");
        loop {
            if Instant::now() >= deadline {
                return Err(BrokerError::Cluster(format!("the active controller did not answer: {last_error}")));
            }
            let Some(controller) = broker.controller.leadership().active_controller else {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            };
            let Some(address) = broker.controller_address(controller) else {
                return Err(BrokerError::Cluster(format!(
                    "controller {controller} is not among controller.quorum.voters"
                )));
            };
            let mut guard = self.connection.lock().await;
            if guard.as_ref().is_none_or(|(id, _)| *id != controller) {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, Connection::connect(&address)).await {
                    Ok(Ok(connection)) => *guard = Some((controller, connection)),
                    Ok(Err(error)) => {
                        last_error = format!("controller {controller} at {address}: {error}");
                        drop(guard);
                        tokio::time::sleep(RETRY_BACKOFF).await;
                        continue;
                    }
                    Err(_) => continue,
                }
            }
            let Some((_, connection)) = guard.as_mut() else { continue };
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, connection.call(body.clone(), version)).await {
                Ok(Ok(response)) => {
                    if not_controller(&response) {
                        last_error = format!("controller {controller} is no longer active");
                        *guard = None;
                        drop(guard);
                        tokio::time::sleep(RETRY_BACKOFF).await;
                        continue;
                    }
                    return Ok(response);
                }
                Ok(Err(error)) => {
                    last_error = format!("controller {controller} at {address}: {error}");
                    *guard = None;
                }
                Err(_) => {
                    *guard = None;
                }
            }
        }
    }

    /// Forwards a client's request frame (without its size prefix) to the active
    /// controller in an Envelope; returns the controller's response frame for it
    /// (without size prefix), which carries the client's correlation id.
    pub async fn forward(&self, broker: &Broker, frame: Bytes, client: SocketAddr) -> Result<Bytes, BrokerError> {
        let client_host_address = match client.ip() {
            std::net::IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
            std::net::IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
        };
        let request = EnvelopeRequest {
            request_data: frame,
            request_principal: None,
            client_host_address,
            ..EnvelopeRequest::default()
        };
        let timeout = FORWARD_TIMEOUT;
        match self.call(broker, RequestBody::Envelope(request), 0, timeout).await? {
            ResponseBody::Envelope(response) if response.error_code == 0 => response
                .response_data
                .ok_or_else(|| BrokerError::Cluster("the controller's envelope carried no response".into())),
            ResponseBody::Envelope(response) => Err(BrokerError::Controller {
                code: ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError),
                message: Some("the active controller refused the forwarded request".into()),
            }),
            other => Err(BrokerError::Cluster(format!("unexpected answer to an envelope: {:?}", other.api_key()))),
        }
    }
}

fn not_controller(response: &ResponseBody) -> bool {
    let code = match response {
        ResponseBody::BrokerRegistration(response) => response.error_code,
        ResponseBody::BrokerHeartbeat(response) => response.error_code,
        ResponseBody::Envelope(response) => response.error_code,
        ResponseBody::AllocateProducerIds(response) => response.error_code,
        ResponseBody::CreateTopics(response) => {
            response.topics.iter().map(|topic| topic.error_code).find(|code| *code != 0).unwrap_or(0)
        }
        _ => 0,
    };
    code == ErrorCode::NotController.code()
}
