//! InitProducerId (key 22), v0-v5.
//!
//! Without a transactional id every request gets a fresh producer id at epoch 0,
//! from this node's block of ids (blocks of 1000 are taken from the controller and
//! recorded in the metadata log, so ids are never reused after a restart). Kafka
//! does the same: an idempotent producer that bumps its epoch (KIP-360, v3+) also
//! gets a new id. A transactional id goes to the transaction coordinator shard of
//! its `__transaction_state` partition (`gregor_txn::init_producer_id`: epoch bump,
//! fencing, timeout check); a fresh producer id is reserved first and handed to the
//! shard, which uses it only for a new id or an exhausted epoch (an unused id is
//! simply skipped).
//!
//! With an authorizer: WRITE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED); without one, IDEMPOTENT_WRITE on the cluster
//! or WRITE on some topic (else CLUSTER_AUTHORIZATION_FAILED), judged as Kafka's
//! `authorizeByResourceType` does: an allowed pattern covered by a DENY does not count.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |error: ErrorCode| InitProducerIdResponse {
        error_code: error.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..InitProducerIdResponse::default()
    };
    let access = broker.access(context);
    match request.transactional_id.as_deref() {
        Some(id) if !access.allows_transactional_id(operation::WRITE, id) => {
            return failed(ErrorCode::TransactionalIdAuthorizationFailed)
        }
        // KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or
        // WRITE on some topic.
        None if !access.allows_cluster(operation::IDEMPOTENT_WRITE)
            && !access.allows_some(operation::WRITE, resource_type::TOPIC) =>
        {
            return failed(ErrorCode::ClusterAuthorizationFailed)
        }
        _ => {}
    }
    if let Some(transactional_id) = request.transactional_id.clone() {
        let fresh_producer_id = match broker.next_producer_id().await {
            Ok(producer_id) => producer_id,
            Err(error) => {
                tracing::warn!("cannot allocate a producer id: {error}");
                return failed(error.error_code());
            }
        };
        let decided = broker
            .txns
            .decide(broker, header.request_api_version, &transactional_id, move |shard, context| {
                shard.init_producer_id(context, request, fresh_producer_id)
            })
            .await;
        return match decided {
            Ok(ResponseBody::InitProducerId(response)) => response,
            Ok(_) => failed(ErrorCode::UnknownServerError),
            Err(code) => failed(code),
        };
    }
    match broker.next_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None.code(),
            producer_id,
            producer_epoch: 0,
            ..InitProducerIdResponse::default()
        },
        Err(error) => {
            tracing::warn!("cannot allocate a producer id: {error}");
            failed(error.error_code())
        }
    }
}
