//! The generic field-by-field comparison of decoded bodies with the manifests.

use serde_json::Value;

use gregor_protocol::frame::decode_request;

use crate::fixtures::raw_fixtures;
use crate::to_json::body_json;

/// Checks every value of `expected` (a manifest body) against `actual` (the
/// decoded body as JSON), by field name; fields only the decoded side has
/// (those of other versions, or at their defaults) are not checked.
fn compare(path: &str, expected: &Value, actual: &Value, mismatches: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, expected_value) in expected {
                let field_path = format!("{path}.{key}");
                match actual.get(key) {
                    Some(actual_value) => compare(&field_path, expected_value, actual_value, mismatches),
                    None => {
                        mismatches.push(format!("{field_path}: in the manifest ({expected_value}) but not decoded"))
                    }
                }
            }
            if let Some(error) = actual.get("error") {
                mismatches.push(format!("{path}: {error}"));
            }
        }
        (Value::Array(expected), Value::Array(actual)) if expected.len() == actual.len() => {
            for (index, (expected, actual)) in expected.iter().zip(actual).enumerate() {
                compare(&format!("{path}[{index}]"), expected, actual, mismatches);
            }
        }
        (Value::Array(expected), Value::Array(actual)) => mismatches.push(format!(
            "{path}: manifest has {} elements, decoded {}: expected {}, decoded {}",
            expected.len(),
            actual.len(),
            Value::Array(expected.clone()),
            Value::Array(actual.clone())
        )),
        (expected, actual) if expected == actual => {}
        (expected, actual) => mismatches.push(format!("{path}: expected {expected}, decoded {actual}")),
    }
}

/// The decoded body holds every value of the manifest's decoding, by field
/// name, record batches and consumer-protocol bytes included.
#[test]
fn every_fixture_body_matches_the_manifest() {
    let mut failures = Vec::new();
    let mut values_checked = 0;
    for raw in raw_fixtures() {
        let name = raw.name();
        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                failures.push(format!("{name}: does not decode: {error}"));
                continue;
            }
        };
        let actual = match body_json(&decoded.body) {
            Ok(actual) => actual,
            Err(error) => {
                failures.push(format!("{name}: {error}"));
                continue;
            }
        };
        let expected = &raw.entry["body"];
        values_checked += count_leaves(expected);
        let mut mismatches = Vec::new();
        compare("body", expected, &actual, &mut mismatches);
        failures.extend(mismatches.into_iter().map(|mismatch| format!("{name}: {mismatch}")));
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(values_checked > 1000, "only {values_checked} manifest values checked");
    eprintln!("{values_checked} manifest values matched");
}

fn count_leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(count_leaves).sum(),
        Value::Array(items) => items.iter().map(count_leaves).sum::<usize>().max(1),
        _ => 1,
    }
}
