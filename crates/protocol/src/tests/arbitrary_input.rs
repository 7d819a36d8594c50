//! Arbitrary bytes never panic a decoder, at any version of any message, and a
//! valid encoding cut short is an error, never a panic.

use crate::codec::Message;
use crate::testing::{Arbitrary, Gen};
use bytes::Bytes;
use proptest::prelude::*;

fn decode_noise<M: Message>(noise: &[u8]) {
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        let _ = M::decode(&mut Bytes::copy_from_slice(noise), version);
    }
}

fn decode_truncated<M: Message + Arbitrary>(seed: u64) -> Result<(), TestCaseError> {
    let mut g = Gen::new(seed);
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        let value = M::arbitrary(&mut g, version, M::FLEXIBLE_VERSIONS.contains(version));
        let Ok(encoded) = value.encode_to_bytes(version) else { continue };
        if encoded.is_empty() {
            continue;
        }
        let cut = (g.next_u64() as usize) % encoded.len();
        let result = M::decode(&mut encoded.slice(..cut), version);
        prop_assert!(result.is_err(), "{} v{version}: decoding {cut} of {} bytes succeeded", M::NAME, encoded.len());
    }
    Ok(())
}

macro_rules! arbitrary_input_test {
    ($module:ident, $ty:ident) => {
        mod $module {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]
                #[test]
                fn noise(noise in proptest::collection::vec(any::<u8>(), 0..96)) {
                    decode_noise::<crate::generated::$ty>(&noise);
                }

                #[test]
                fn truncated(seed in any::<u64>()) {
                    decode_truncated::<crate::generated::$ty>(seed)?;
                }
            }
        }
    };
}

crate::generated::for_each_message!(arbitrary_input_test);
