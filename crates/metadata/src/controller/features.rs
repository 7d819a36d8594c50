//! UpdateFeatures: finalizing feature levels (`kafka-features.sh upgrade`), as
//! Kafka's FeatureControlManager decides it. Every update is checked against the
//! levels this controller supports and every registered broker's range; a
//! downgrade needs a downgrade upgrade type; metadata.version is never lowered
//! (it could drop metadata). One failure refuses the whole request.

use super::{supported_features, ApiError, METADATA_VERSION_FEATURE, METADATA_VERSION_MIN};
use crate::image::MetadataImage;
use crate::record::MetadataRecord;
use gregor_protocol::messages::FeatureLevelRecord;
use gregor_protocol::ErrorCode;

/// How an update may move a level (the request's UpgradeType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    Unknown,
}

impl UpgradeType {
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One requested change: feature name, new level, upgrade type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUpdate {
    pub feature: String,
    pub level: i16,
    pub upgrade_type: UpgradeType,
}

fn range_text(min: i16, max: i16) -> String {
    if min == max {
        min.to_string()
    } else if max == i16::MAX {
        format!("{min}+")
    } else {
        format!("{min}-{max}")
    }
}

fn not_supported(what: &str, level: i16, range: (i16, i16)) -> Option<String> {
    if level >= range.0 && level <= range.1 {
        return None;
    }
    if range.1 == 0 {
        Some(format!("{what} does not support this feature."))
    } else {
        Some(format!("{what} only supports versions {}", range_text(range.0, range.1)))
    }
}

fn invalid(feature: &str, level: i16, message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidUpdateVersion,
        format!("Invalid update version {level} for feature {feature}. {message}"),
    )
}

/// The records that finalize `updates`, or the error that refuses them all.
/// `node_id` names this controller in messages. With `validate_only` nothing is written.
pub fn update_features(
    image: &MetadataImage,
    node_id: i32,
    updates: &[FeatureUpdate],
    validate_only: bool,
) -> (Vec<MetadataRecord>, Result<(), ApiError>) {
    let mut records = Vec::new();
    for update in updates {
        let FeatureUpdate { feature, level, upgrade_type } = update;
        let level = *level;
        if *upgrade_type == UpgradeType::Unknown {
            return (
                Vec::new(),
                Err(invalid(feature, level, "The controller does not support the given upgrade type.")),
            );
        }
        let current = image.features().get(feature.as_str()).copied().unwrap_or(0);
        if level < 0 {
            return (Vec::new(), Err(invalid(feature, level, "A feature version cannot be less than 0.")));
        }
        let local =
            supported_features().iter().find(|supported| supported.name == feature).map_or((0, 0), |supported| {
                (if supported.name == METADATA_VERSION_FEATURE { supported.min_level } else { 0 }, supported.max_level)
            });
        if let Some(reason) = not_supported(&format!("Local controller {node_id}"), level, local) {
            return (Vec::new(), Err(invalid(feature, level, &reason)));
        }
        for broker in image.brokers() {
            let range = broker.supported_features.get(feature.as_str()).copied().unwrap_or((0, 0));
            if let Some(reason) = not_supported(&format!("Broker {}", broker.id), level, range) {
                return (Vec::new(), Err(invalid(feature, level, &reason)));
            }
        }
        if level < current && *upgrade_type == UpgradeType::Upgrade {
            let message = "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.";
            return (Vec::new(), Err(invalid(feature, level, message)));
        }
        if level > current && *upgrade_type != UpgradeType::Upgrade {
            return (Vec::new(), Err(invalid(feature, level, "Can't downgrade to a newer version.")));
        }
        if feature == METADATA_VERSION_FEATURE {
            let refuse = |message: &str| {
                ApiError::new(ErrorCode::InvalidUpdateVersion, format!("Invalid metadata.version {level}. {message}"))
            };
            if level < METADATA_VERSION_MIN {
                return (Vec::new(), Err(refuse("Unable to set a metadata.version less than 3.3-IV0")));
            }
            if level < current {
                let message = if *upgrade_type == UpgradeType::UnsafeDowngrade {
                    "Unsafe metadata downgrade is not supported in this version."
                } else {
                    "Refusing to perform the requested downgrade because it might delete metadata information."
                };
                return (Vec::new(), Err(refuse(message)));
            }
        }
        if level != current {
            records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: feature.clone(),
                feature_level: level,
                ..Default::default()
            }));
        }
    }
    if validate_only {
        return (Vec::new(), Ok(()));
    }
    (records, Ok(()))
}
