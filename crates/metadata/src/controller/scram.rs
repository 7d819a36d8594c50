//! AlterUserScramCredentials: deletions and upsertions of SCRAM credentials, one
//! outcome per user. A user named twice in one request (in either list) fails as a
//! duplicate and nothing is changed for it.

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_protocol::messages::remove_user_scram_credential_record::RemoveUserScramCredentialRecord;
use gregor_protocol::messages::user_scram_credential_record::UserScramCredentialRecord;
use gregor_protocol::ErrorCode;

use super::ApiError;
use crate::image::MetadataImage;
use crate::record::MetadataRecord;
use crate::scram::{derive_keys, is_known_mechanism, ITERATIONS_MAX, ITERATIONS_MIN};

/// A new or replaced credential, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Bytes,
    pub salted_password: Bytes,
}

enum Alteration<'a> {
    Delete(i8),
    Upsert(&'a ScramUpsertion),
}

fn check_deletion(image: &MetadataImage, user: &str, mechanism: i8) -> Result<MetadataRecord, ApiError> {
    if !is_known_mechanism(mechanism) {
        return Err(ApiError::new(ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"));
    }
    if !image.scram_credentials().contains_key(&(user.to_string(), mechanism)) {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            "Attempt to delete a user credential that does not exist",
        ));
    }
    Ok(MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord {
        name: user.to_string(),
        mechanism,
        ..Default::default()
    }))
}

fn check_upsertion(upsertion: &ScramUpsertion) -> Result<MetadataRecord, ApiError> {
    let unacceptable = |message: &str| ApiError::new(ErrorCode::UnacceptableCredential, message);
    if !is_known_mechanism(upsertion.mechanism) {
        return Err(ApiError::new(ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"));
    }
    if upsertion.iterations < ITERATIONS_MIN {
        return Err(unacceptable("Too few iterations"));
    }
    if upsertion.iterations > ITERATIONS_MAX {
        return Err(unacceptable("Too many iterations"));
    }
    if upsertion.salt.is_empty() {
        return Err(unacceptable("Salt must not be empty"));
    }
    if upsertion.salted_password.is_empty() {
        return Err(unacceptable("Salted password must not be empty"));
    }
    let Some((stored_key, server_key)) = derive_keys(upsertion.mechanism, &upsertion.salted_password) else {
        return Err(ApiError::new(ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"));
    };
    Ok(MetadataRecord::UserScramCredential(UserScramCredentialRecord {
        name: upsertion.user.clone(),
        mechanism: upsertion.mechanism,
        salt: upsertion.salt.clone(),
        stored_key: Bytes::from(stored_key),
        server_key: Bytes::from(server_key),
        iterations: upsertion.iterations,
        ..Default::default()
    }))
}

/// One user's result.
pub type ScramOutcome = (String, Result<(), ApiError>);

/// Applies the deletions (user, mechanism) and upsertions; returns one outcome per
/// user, in the order users first appear (deletions first, as on the wire).
pub fn alter_scram_credentials(
    image: &MetadataImage,
    deletions: &[(String, i8)],
    upsertions: &[ScramUpsertion],
) -> (Vec<MetadataRecord>, Vec<ScramOutcome>) {
    let mut order: Vec<&str> = Vec::new();
    let mut by_user: BTreeMap<&str, Vec<Alteration<'_>>> = BTreeMap::new();
    let alterations = deletions
        .iter()
        .map(|(user, mechanism)| (user.as_str(), Alteration::Delete(*mechanism)))
        .chain(upsertions.iter().map(|upsertion| (upsertion.user.as_str(), Alteration::Upsert(upsertion))));
    for (user, alteration) in alterations {
        let entry = by_user.entry(user).or_default();
        if entry.is_empty() {
            order.push(user);
        }
        entry.push(alteration);
    }
    let mut records = Vec::new();
    let outcomes = order
        .into_iter()
        .map(|user| {
            let outcome = match by_user.get(user).map(Vec::as_slice) {
                _ if user.is_empty() => {
                    Err(ApiError::new(ErrorCode::UnacceptableCredential, "Username must not be empty"))
                }
                Some([alteration]) => match alteration {
                    Alteration::Delete(mechanism) => check_deletion(image, user, *mechanism),
                    Alteration::Upsert(upsertion) => check_upsertion(upsertion),
                }
                .map(|record| records.push(record)),
                _ => Err(ApiError::new(
                    ErrorCode::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                )),
            };
            (user.to_string(), outcome)
        })
        .collect();
    (records, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::{SCRAM_SHA_256, SCRAM_SHA_512};

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            user: user.to_string(),
            mechanism,
            iterations,
            salt: Bytes::from_static(b"salt"),
            salted_password: Bytes::from_static(b"0123456789abcdef0123456789abcdef"),
        }
    }

    fn codes(outcomes: &[ScramOutcome]) -> Vec<(&str, ErrorCode)> {
        outcomes
            .iter()
            .map(|(user, outcome)| {
                (user.as_str(), outcome.as_ref().map_or_else(|error| error.code, |()| ErrorCode::None))
            })
            .collect()
    }

    #[test]
    fn upsert_then_delete_with_every_refusal() {
        let mut image = MetadataImage::empty();
        let upsertions = [
            upsert("alice", SCRAM_SHA_256, 8192),
            upsert("bob", SCRAM_SHA_512, 100),
            upsert("carol", 9, 8192),
            upsert("dave", SCRAM_SHA_256, 4096),
            upsert("dave", SCRAM_SHA_512, 4096),
            upsert("", SCRAM_SHA_256, 4096),
        ];
        let (records, outcomes) = alter_scram_credentials(&image, &[("erin".into(), SCRAM_SHA_256)], &upsertions);
        assert_eq!(
            codes(&outcomes),
            vec![
                ("erin", ErrorCode::ResourceNotFound),
                ("alice", ErrorCode::None),
                ("bob", ErrorCode::UnacceptableCredential),
                ("carol", ErrorCode::UnsupportedSaslMechanism),
                ("dave", ErrorCode::DuplicateResource),
                ("", ErrorCode::UnacceptableCredential),
            ]
        );
        assert_eq!(records.len(), 1);
        for record in &records {
            image.replay(record).expect("replay");
        }
        let stored = &image.scram_credentials()[&("alice".to_string(), SCRAM_SHA_256)];
        assert_eq!(stored.iterations, 8192);
        assert_eq!(stored.salt, b"salt");
        assert_eq!(stored.stored_key.len(), 32);

        let (records, outcomes) = alter_scram_credentials(&image, &[("alice".into(), SCRAM_SHA_256)], &[]);
        assert_eq!(codes(&outcomes), vec![("alice", ErrorCode::None)]);
        for record in &records {
            image.replay(record).expect("replay");
        }
        assert!(image.scram_credentials().is_empty());
    }
}
