//! ApiVersions (key 18), v0-v4.
//!
//! Lists every API in [`crate::api_versions::SUPPORTED_APIS`] with its range.
//! v1+ adds the throttle time; v3+ (flexible) carries the client's software name and
//! version, which must match Kafka's pattern or the answer is INVALID_REQUEST (the
//! client then retries at v0); v3+ also lists the supported and finalized features.
//! A request at a version outside our range never reaches this handler: the
//! connection answers it with UNSUPPORTED_VERSION in the v0 layout.

use crate::api_versions::SUPPORTED_APIS;
use crate::broker::Broker;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, header: &RequestHeader, request: ApiVersionsRequest) -> ApiVersionsResponse {
    let version = header.request_api_version;
    if version >= 3
        && !(is_valid_software_field(&request.client_software_name)
            && is_valid_software_field(&request.client_software_version))
    {
        return ApiVersionsResponse { error_code: ErrorCode::InvalidRequest.code(), ..ApiVersionsResponse::default() };
    }
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|entry| ApiVersion {
            api_key: entry.api_key.key(),
            min_version: entry.min_version,
            max_version: entry.max_version,
            ..ApiVersion::default()
        })
        .collect();
    let image = broker.image();
    let supported_features = gregor_metadata::supported_features()
        .iter()
        .map(|feature| SupportedFeatureKey {
            name: feature.name.to_owned(),
            min_version: feature.min_level,
            max_version: feature.max_level,
            ..SupportedFeatureKey::default()
        })
        .collect();
    let finalized_features = image
        .features()
        .iter()
        .filter(|(_, level)| **level > 0)
        .map(|(name, level)| FinalizedFeatureKey {
            name: name.clone(),
            max_version_level: *level,
            min_version_level: *level,
            ..FinalizedFeatureKey::default()
        })
        .collect();
    ApiVersionsResponse {
        error_code: ErrorCode::None.code(),
        api_keys,
        throttle_time_ms: 0,
        supported_features,
        finalized_features_epoch: broker.metadata_offset.load(std::sync::atomic::Ordering::Acquire),
        finalized_features,
        zk_migration_ready: false,
        ..ApiVersionsResponse::default()
    }
}

/// Kafka's rule for client software names and versions: letters and digits at both
/// ends, and letters, digits, '-' and '.' between.
pub(crate) fn is_valid_software_field(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else { return false };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'.')
}

#[cfg(test)]
mod tests {
    use super::is_valid_software_field;

    #[test]
    fn software_names_follow_kafkas_pattern() {
        for good in ["librdkafka", "apache-kafka-java", "2.12.1", "a", "kafka-python.2"] {
            assert!(is_valid_software_field(good), "{good}");
        }
        for bad in ["", "-x", "x-", "a b", "x_y", ".a"] {
            assert!(!is_valid_software_field(bad), "{bad}");
        }
    }
}
