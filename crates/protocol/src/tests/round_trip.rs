//! Every message at every version: a random value valid for that version encodes,
//! decodes back to itself, and consumes exactly the bytes written.

use crate::codec::Message;
use crate::testing::{Arbitrary, Gen};
use proptest::prelude::*;

pub(crate) fn round_trip_all_versions<M: Message + Arbitrary + std::fmt::Debug>(
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut g = Gen::new(seed);
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        let flexible = M::FLEXIBLE_VERSIONS.contains(version);
        let value = M::arbitrary(&mut g, version, flexible);
        let encoded = value
            .encode_to_bytes(version)
            .map_err(|e| TestCaseError::fail(format!("{} v{version}: encode failed: {e}: {value:?}", M::NAME)))?;
        let mut input = encoded.clone();
        let decoded = M::decode(&mut input, version)
            .map_err(|e| TestCaseError::fail(format!("{} v{version}: decode failed: {e}", M::NAME)))?;
        prop_assert!(input.is_empty(), "{} v{}: {} bytes left over", M::NAME, version, input.len());
        prop_assert_eq!(&decoded, &value, "{} v{}", M::NAME, version);
    }
    Ok(())
}

macro_rules! round_trip_test {
    ($module:ident, $ty:ident) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $module(seed in any::<u64>()) {
                round_trip_all_versions::<crate::generated::$ty>(seed)?;
            }
        }
    };
}

crate::generated::for_each_message!(round_trip_test);

#[test]
fn absent_non_ignorable_field_is_an_encode_error() {
    use crate::generated::ProduceRequest;
    let request = ProduceRequest { transactional_id: Some("txn".into()), ..ProduceRequest::default() };
    let err = request.encode_to_bytes(2).unwrap_err();
    assert!(matches!(err, crate::EncodeError::FieldNotInVersion { field: "TransactionalId", .. }), "{err}");
    assert!(request.encode_to_bytes(3).is_ok());
}

#[test]
fn absent_ignorable_field_is_dropped() {
    use crate::generated::produce_response::{ProduceResponse, TopicProduceResponse};
    let response = ProduceResponse {
        responses: vec![TopicProduceResponse { name: "t".into(), ..Default::default() }],
        throttle_time_ms: 100,
        ..Default::default()
    };
    let bytes = response.encode_to_bytes(0).unwrap();
    let decoded = ProduceResponse::decode(&mut bytes.clone(), 0).unwrap();
    assert_eq!(decoded.throttle_time_ms, 0);
}

#[test]
fn unknown_tagged_fields_survive_a_round_trip() {
    use crate::codec::RawTaggedField;
    use crate::generated::ApiVersionsRequest;
    let request = ApiVersionsRequest {
        client_software_name: "gregor".into(),
        client_software_version: "1.0".into(),
        unknown_tagged_fields: vec![RawTaggedField { tag: 7, data: bytes::Bytes::from_static(b"xyz") }],
    };
    let bytes = request.encode_to_bytes(3).unwrap();
    assert_eq!(ApiVersionsRequest::decode(&mut bytes.clone(), 3).unwrap(), request);
    assert!(request.encode_to_bytes(2).is_err(), "tagged fields cannot be sent before flexible versions");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    use crate::generated::SaslAuthenticateRequest;
    let request =
        SaslAuthenticateRequest { auth_bytes: bytes::Bytes::from_static(b"\0user\0hunter2"), ..Default::default() };
    let printed = format!("{request:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
}
