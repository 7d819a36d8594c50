//! Re-encoding every fixture byte for byte.

use gregor_protocol::frame::{decode_request, encode_request_frame};

use crate::fixtures::{hex, raw_fixtures};

/// Re-encoding the decoded header and body gives back the client's bytes.
#[test]
fn every_fixture_re_encodes_byte_for_byte() {
    let mut failures = Vec::new();
    for raw in raw_fixtures() {
        let name = raw.name();
        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                failures.push(format!("{name}: does not decode: {error}"));
                continue;
            }
        };
        let encoded = match encode_request_frame(&decoded.header, &decoded.body) {
            Ok(encoded) => encoded.freeze(),
            Err(error) => {
                failures.push(format!("{name}: does not encode: {error}"));
                continue;
            }
        };
        let Some((size, reencoded)) = encoded.split_first_chunk::<4>() else {
            failures.push(format!("{name}: encoded frame has no size prefix"));
            continue;
        };
        if i32::from_be_bytes(*size) as usize != reencoded.len() {
            failures.push(format!("{name}: size prefix {} for {} bytes", i32::from_be_bytes(*size), reencoded.len()));
        }
        if let Some(difference) = first_difference(&raw.frame, reencoded) {
            failures.push(format!("{name}: re-encoding differs: {difference}"));
        }
    }
    assert!(failures.is_empty(), "{} fixtures do not round-trip:\n{}", failures.len(), failures.join("\n"));
}

fn first_difference(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let at = expected.iter().zip(actual).take_while(|(a, b)| a == b).count();
    let window = |bytes: &[u8]| hex(&bytes[at.saturating_sub(8)..(at + 16).min(bytes.len())]);
    Some(format!(
        "{} bytes expected, {} encoded; first difference at offset {at}: expected ..{}.. encoded ..{}.. \
         (windows start at offset {})",
        expected.len(),
        actual.len(),
        window(expected),
        window(actual),
        at.saturating_sub(8)
    ))
}
