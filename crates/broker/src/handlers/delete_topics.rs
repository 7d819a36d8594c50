//! DeleteTopics (key 20), v1-v6.
//!
//! Deletes topics by name (v1-v5: `topic_names`; v6: `topics`, each by name or by
//! id). The removal is recorded in the metadata log, then the partitions' logs are
//! deleted. Unknown names are UNKNOWN_TOPIC_OR_PARTITION, unknown ids
//! UNKNOWN_TOPIC_ID; with `delete.topic.enable=false` every topic is
//! TOPIC_DELETION_DISABLED. v5+ carries error messages; v6 topic ids. With an
//! authorizer, a topic the client may not DELETE is TOPIC_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_metadata::controller::{delete_topics, TopicRef};
use gregor_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use gregor_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let version = header.request_api_version;
    let refs: Vec<TopicRef> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|topic| match topic.name {
                Some(name) => TopicRef::Name(name),
                None => TopicRef::Id(topic.topic_id),
            })
            .collect()
    } else {
        request.topic_names.into_iter().map(TopicRef::Name).collect()
    };
    let result_for = |reference: &TopicRef, error: ErrorCode, message: Option<String>, id: Uuid| {
        let (name, topic_id) = match reference {
            TopicRef::Name(name) => (Some(name.clone()), id),
            TopicRef::Id(id) => (None, *id),
        };
        DeletableTopicResult {
            name,
            topic_id: if version >= 6 { topic_id } else { Uuid::ZERO },
            error_code: error.code(),
            error_message: if version >= 5 { message } else { None },
            ..DeletableTopicResult::default()
        }
    };
    if !broker.config().delete_topic_enable {
        let responses = refs
            .iter()
            .map(|reference| result_for(reference, ErrorCode::TopicDeletionDisabled, None, Uuid::ZERO))
            .collect();
        return DeleteTopicsResponse { throttle_time_ms: 0, responses, ..DeleteTopicsResponse::default() };
    }
    let access = broker.access(context);
    let image = broker.image();
    let denied: Vec<bool> = refs
        .iter()
        .map(|reference| {
            let name = match reference {
                TopicRef::Name(name) => Some(name.as_str()),
                TopicRef::Id(id) => image.topic_by_id(*id).map(|topic| topic.name.as_str()),
            };
            name.is_some_and(|name| !access.allows_topic(operation::DELETE, name))
        })
        .collect();
    let asked: Vec<TopicRef> =
        refs.iter().zip(&denied).filter(|(_, denied)| !**denied).map(|(reference, _)| reference.clone()).collect();
    let outcomes = broker.decide(move |image, _context| delete_topics(image, &asked)).await;
    let responses = match outcomes {
        Ok(outcomes) => {
            let mut allowed = outcomes.into_iter();
            refs.iter()
                .zip(&denied)
                .filter_map(|(reference, denied)| {
                    if *denied {
                        return Some(result_for(reference, ErrorCode::TopicAuthorizationFailed, None, Uuid::ZERO));
                    }
                    allowed.next().map(|outcome| DeletableTopicResult {
                        // Before v6 the name is not nullable: answer with the name asked for.
                        name: outcome.name.or_else(|| match &outcome.topic {
                            TopicRef::Name(name) => Some(name.clone()),
                            TopicRef::Id(_) => None,
                        }),
                        topic_id: if version >= 6 { outcome.topic_id } else { Uuid::ZERO },
                        error_code: outcome.error.code(),
                        error_message: if version >= 5 { outcome.message } else { None },
                        ..DeletableTopicResult::default()
                    })
                })
                .collect()
        }
        Err(error) => refs
            .iter()
            .map(|reference| result_for(reference, error.error_code(), Some(error.to_string()), Uuid::ZERO))
            .collect(),
    };
    DeleteTopicsResponse { throttle_time_ms: 0, responses, ..DeleteTopicsResponse::default() }
}
