//! UpdateFeatures as `kafka-features.sh` sends it, against the real binary: levels
//! outside what the controller and brokers support are refused with Kafka's
//! messages, a downgrade needs a downgrade type, metadata.version is never
//! lowered, and a change shows in ApiVersions' finalized features.

use anyhow::Result;
use gregor_integration_tests::expect_response;
use gregor_integration_tests::group_wire::Conn;
use gregor_integration_tests::BrokerProcess;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::update_features_request::{FeatureUpdateKey, UpdateFeaturesRequest};
use gregor_protocol::ErrorCode;

fn update(
    conn: &mut Conn,
    feature: &str,
    level: i16,
    upgrade_type: i8,
    validate_only: bool,
) -> Result<(i16, Option<String>)> {
    let request = UpdateFeaturesRequest {
        timeout_ms: 30_000,
        feature_updates: vec![FeatureUpdateKey {
            feature: feature.into(),
            max_version_level: level,
            upgrade_type,
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, 1)?, UpdateFeatures);
    Ok((response.error_code, response.error_message))
}

fn finalized(conn: &mut Conn, feature: &str) -> Result<Option<i16>> {
    let request = ApiVersionsRequest {
        client_software_name: "features-test".into(),
        client_software_version: "1".into(),
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, 3)?, ApiVersions);
    Ok(response.finalized_features.iter().find(|f| f.name == feature).map(|f| f.max_version_level))
}

#[test]
fn update_features_checks_levels_and_downgrades_as_kafka() -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    let mut conn = Conn::new(&broker.bootstrap())?;
    let invalid = ErrorCode::InvalidUpdateVersion.code();

    let (code, message) = update(&mut conn, "group.version", 7, 1, false)?;
    assert_eq!(code, invalid);
    assert_eq!(
        message.as_deref(),
        Some("Invalid update version 7 for feature group.version. Local controller 1 only supports versions 0-1")
    );
    let (code, message) = update(&mut conn, "no.such.version", 1, 1, false)?;
    assert_eq!(code, invalid);
    assert!(message.unwrap_or_default().ends_with("Local controller 1 does not support this feature."));
    let (code, message) = update(&mut conn, "group.version", 0, 1, false)?;
    assert_eq!(code, invalid);
    assert!(message
        .unwrap_or_default()
        .contains("without setting the upgrade type to either safe or unsafe downgrade"));
    let (code, _) = update(&mut conn, "metadata.version", 20, 2, false)?;
    assert_eq!(code, invalid, "metadata.version was lowered");

    // A safe downgrade, validated only, changes nothing; then for real, and back.
    assert_eq!(finalized(&mut conn, "group.version")?, Some(1));
    assert_eq!(update(&mut conn, "group.version", 0, 2, true)?.0, 0);
    assert_eq!(finalized(&mut conn, "group.version")?, Some(1));
    assert_eq!(update(&mut conn, "group.version", 0, 2, false)?.0, 0);
    assert_eq!(finalized(&mut conn, "group.version")?, None);
    assert_eq!(update(&mut conn, "group.version", 1, 1, false)?.0, 0);
    assert_eq!(finalized(&mut conn, "group.version")?, Some(1));
    Ok(())
}
