//! UpdateFeatures (key 57), v0-v2, as `kafka-features.sh upgrade|downgrade` uses it.
//!
//! ALTER on the cluster; the active controller checks every update against its own
//! supported levels and every registered broker's (Kafka's FeatureControlManager,
//! in `gregor_metadata::controller::features`) and finalizes them all or none.
//! v0's AllowDowngrade maps to a safe downgrade; v0-v1 answer a result per
//! feature when the request succeeds, v2 only the top-level error, as Kafka.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::features::{update_features, FeatureUpdate, UpgradeType};
use gregor_protocol::messages::update_features_response::UpdatableFeatureResult;
use gregor_protocol::messages::{RequestHeader, UpdateFeaturesRequest, UpdateFeaturesResponse};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    let version = header.request_api_version;
    let names: Vec<String> = request.feature_updates.iter().map(|update| update.feature.clone()).collect();
    let answer = |code: ErrorCode, message: Option<String>| {
        let results = if version <= 1 && code == ErrorCode::None {
            names
                .iter()
                .map(|feature| UpdatableFeatureResult { feature: feature.clone(), ..Default::default() })
                .collect()
        } else {
            Vec::new()
        };
        UpdateFeaturesResponse { error_code: code.code(), error_message: message, results, ..Default::default() }
    };
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return answer(ErrorCode::ClusterAuthorizationFailed, None);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(duplicate) = names.iter().find(|name| !seen.insert(name.as_str())) {
        return answer(ErrorCode::InvalidRequest, Some(format!("Feature {duplicate} appears more than once.")));
    }
    let updates: Vec<FeatureUpdate> = request
        .feature_updates
        .iter()
        .map(|update| FeatureUpdate {
            feature: update.feature.clone(),
            level: update.max_version_level,
            upgrade_type: if version == 0 {
                if update.allow_downgrade {
                    UpgradeType::SafeDowngrade
                } else {
                    UpgradeType::Upgrade
                }
            } else {
                UpgradeType::from_code(update.upgrade_type)
            },
        })
        .collect();
    let validate_only = version >= 1 && request.validate_only;
    let node_id = broker.node_id;
    match broker.decide(move |image, _context| update_features(image, node_id, &updates, validate_only)).await {
        Ok(Ok(())) => answer(ErrorCode::None, None),
        Ok(Err(error)) => answer(error.code, error.message),
        Err(error) => answer(error.error_code(), Some(error.to_string())),
    }
}
