//! CreateAcls and DeleteAcls: ACLs are metadata records, added with an id and removed
//! by it, so that every broker replaying the log holds the same set.

use std::collections::BTreeSet;

use gregor_protocol::messages::remove_access_control_entry_record::RemoveAccessControlEntryRecord;
use gregor_protocol::{ErrorCode, Uuid};

use super::topics::{EXCESSIVE_BATCH_MESSAGE, RECORDS_PER_OPERATION_MAX};
use super::ApiError;
use crate::acl::{AclBinding, AclFilter};
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

/// Adds each valid ACL that the cluster does not hold yet. Creating an ACL that exists
/// succeeds without a record, as in Kafka.
pub fn create_acls(
    image: &MetadataImage,
    acls: &[AclBinding],
    new_uuid: &mut dyn FnMut() -> Uuid,
) -> (Vec<MetadataRecord>, Vec<Result<(), ApiError>>) {
    if acls.len() > RECORDS_PER_OPERATION_MAX {
        // Each new ACL is one record: refused whole, as Kafka's bounded record list does.
        let refused = ApiError::new(ErrorCode::PolicyViolation, EXCESSIVE_BATCH_MESSAGE);
        return (Vec::new(), acls.iter().map(|_| Err(refused.clone())).collect());
    }
    let existing: BTreeSet<&AclBinding> = image.acls().values().collect();
    let mut added: BTreeSet<&AclBinding> = BTreeSet::new();
    let mut used_ids: BTreeSet<Uuid> = BTreeSet::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(acls.len());
    for acl in acls {
        if let Err(message) = acl.validate() {
            outcomes.push(Err(ApiError::new(ErrorCode::InvalidRequest, message)));
            continue;
        }
        if !existing.contains(acl) && added.insert(acl) {
            let id = loop {
                let candidate = new_uuid();
                if candidate != Uuid::ZERO && !image.acls().contains_key(&candidate) && used_ids.insert(candidate) {
                    break candidate;
                }
            };
            records.push(MetadataRecord::AccessControlEntry(acl.to_record(id)));
        }
        outcomes.push(Ok(()));
    }
    (records, outcomes)
}

/// Removes every ACL each filter matches and reports them per filter. An ACL that
/// several filters match is reported by each and removed once.
pub fn delete_acls(
    image: &MetadataImage,
    filters: &[AclFilter],
) -> (Vec<MetadataRecord>, Vec<Result<Vec<AclBinding>, ApiError>>) {
    let mut removed: BTreeSet<Uuid> = BTreeSet::new();
    let mut records = Vec::new();
    let outcomes = filters
        .iter()
        .map(|filter| {
            filter.validate().map_err(|message| ApiError::new(ErrorCode::InvalidRequest, message))?;
            let mut matched = Vec::new();
            for (id, acl) in image.acls() {
                if filter.matches(acl) {
                    if removed.insert(*id) {
                        records.push(MetadataRecord::RemoveAccessControlEntry(RemoveAccessControlEntryRecord {
                            id: *id,
                            ..Default::default()
                        }));
                    }
                    matched.push(acl.clone());
                }
            }
            Ok(matched)
        })
        .collect();
    (records, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{operation, pattern_type, permission, resource_type};

    fn binding(name: &str, op: i8) -> AclBinding {
        AclBinding {
            resource_type: resource_type::TOPIC,
            resource_name: name.to_string(),
            pattern_type: pattern_type::LITERAL,
            principal: "User:a".to_string(),
            host: "*".to_string(),
            operation: op,
            permission: permission::ALLOW,
        }
    }

    fn replayed(image: &mut MetadataImage, records: &[MetadataRecord]) {
        for record in records {
            image.replay(record).expect("replay");
        }
    }

    #[test]
    fn create_skips_duplicates_and_refuses_invalid_acls_and_delete_removes_once() {
        let mut next = 0u64;
        let mut new_uuid = move || {
            next += 1;
            Uuid::from_u128(u128::from(next))
        };
        let mut image = MetadataImage::empty();
        let invalid = AclBinding { operation: operation::ANY, ..binding("t", operation::READ) };
        let acls =
            [binding("t", operation::READ), binding("t", operation::READ), invalid, binding("u", operation::WRITE)];
        let (records, outcomes) = create_acls(&image, &acls, &mut new_uuid);
        assert_eq!(records.len(), 2);
        assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 3);
        assert_eq!(outcomes[2].as_ref().map_err(|error| error.code), Err(ErrorCode::InvalidRequest));
        replayed(&mut image, &records);
        let (again, _) = create_acls(&image, &acls[..1], &mut new_uuid);
        assert!(again.is_empty(), "an existing ACL is not written twice");

        let everything = AclFilter {
            resource_type: resource_type::ANY,
            resource_name: None,
            pattern_type: pattern_type::ANY,
            principal: None,
            host: None,
            operation: operation::ANY,
            permission: permission::ANY,
        };
        let reads = AclFilter { operation: operation::READ, ..everything.clone() };
        let (records, outcomes) = delete_acls(&image, &[reads, everything]);
        assert_eq!(records.len(), 2);
        let counts: Vec<usize> = outcomes.iter().map(|outcome| outcome.as_ref().map(Vec::len).unwrap_or(0)).collect();
        assert_eq!(counts, vec![1, 2]);
        replayed(&mut image, &records);
        assert!(image.acls().is_empty());
    }
}
