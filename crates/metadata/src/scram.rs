//! SCRAM credentials (KIP-554): what the log stores per user and mechanism, and how
//! the controller derives it from the salted password a client sends.
//!
//! A client never sends the password: it sends `SaltedPassword = Hi(password, salt,
//! iterations)` (RFC 5802). The controller keeps `StoredKey = H(HMAC(SaltedPassword,
//! "Client Key"))` and `ServerKey = HMAC(SaltedPassword, "Server Key")`, which are what
//! a SCRAM server needs to check a login, and nothing from which the password follows.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// SCRAM-SHA-256, as the wire numbers it.
pub const SCRAM_SHA_256: i8 = 1;
/// SCRAM-SHA-512.
pub const SCRAM_SHA_512: i8 = 2;
/// Kafka's bounds on the iteration count, for both mechanisms.
pub const ITERATIONS_MIN: i32 = 4096;
pub const ITERATIONS_MAX: i32 = 16384;

/// One user's credential for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    // The keys are secrets in the SCRAM sense; logs show only the iteration count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// Whether `mechanism` is one Gregor can store.
pub fn is_known_mechanism(mechanism: i8) -> bool {
    mechanism == SCRAM_SHA_256 || mechanism == SCRAM_SHA_512
}

fn hmac_digest<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// StoredKey and ServerKey of a salted password; `None` for an unknown mechanism.
pub fn derive_keys(mechanism: i8, salted_password: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match mechanism {
        SCRAM_SHA_256 => {
            let client_key = hmac_digest::<Hmac<Sha256>>(salted_password, b"Client Key");
            let server_key = hmac_digest::<Hmac<Sha256>>(salted_password, b"Server Key");
            Some((Sha256::digest(&client_key).to_vec(), server_key))
        }
        SCRAM_SHA_512 => {
            let client_key = hmac_digest::<Hmac<Sha512>>(salted_password, b"Client Key");
            let server_key = hmac_digest::<Hmac<Sha512>>(salted_password, b"Server Key");
            Some((Sha512::digest(&client_key).to_vec(), server_key))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn keys_match_an_independent_implementation() {
        // Expected values from Python's hashlib/hmac: PBKDF2 of password "pencil", salt
        // "salt", 4096 iterations, then RFC 5802's StoredKey and ServerKey.
        let salted = unhex("0997564f292923271312698037b6b0a06a8be7fbd912480847c5a1ace4b8d1c7");
        let (stored, server) = derive_keys(SCRAM_SHA_256, &salted).expect("known mechanism");
        assert_eq!(hex(&stored), "bbe88bb3da86e31a73f27e22045265cdefdf54e8cfda386a4085f1fcd0221524");
        assert_eq!(hex(&server), "7a5421e304f8f1ea5e669c170719628487629be044923a77b1400577f202cb22");
        let salted = unhex(concat!(
            "2cfe3a1c151662b1ea49d13f595674a1c666add70df15d3d02254e9905993878",
            "261da7407fd11c2fee4b0a30df5154b1a752f86a13380ddd4bdd9a7c958ec769"
        ));
        let (stored, server) = derive_keys(SCRAM_SHA_512, &salted).expect("known mechanism");
        assert_eq!(
            hex(&stored),
            concat!(
                "ff41e86c08f2e525a87285eda3d634d669bae8ab6c2e5b3e09ad0014a691fab9",
                "eb26557062ff978ee011d9b23e6b87437df366cf7cd4c8747df9277d067fd330"
            )
        );
        assert_eq!(
            hex(&server),
            concat!(
                "a20870894973d9c760b240b7a95060f1e63512b5f21b81f15ecfe996c163b648",
                "d1af4132eaa2e63b3e89b46bb1592beee5f536c2e1005954521cf37278199629"
            )
        );
        assert!(derive_keys(0, &salted).is_none());
    }
}
