//! The records of `__consumer_offsets`, in Kafka's framing.
//!
//! A record's key is a big-endian int16 *key version*, which also says what kind of
//! record it is, followed by the key struct; its value is an int16 value version
//! followed by the value struct, or null (a tombstone) when the thing is deleted.
//! Key versions 0 and 1 are offset commits, 2 is classic group metadata, 3-8 are the
//! KIP-848 consumer-group records; 9-15 (share groups) are recognised and skipped.

use crate::error::GroupError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::messages::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_value::ConsumerGroupCurrentMemberAssignmentValue;
use gregor_protocol::messages::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use gregor_protocol::messages::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use gregor_protocol::messages::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use gregor_protocol::messages::consumer_group_partition_metadata_value::ConsumerGroupPartitionMetadataValue;
use gregor_protocol::messages::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use gregor_protocol::messages::consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::group_metadata_value::GroupMetadataValue;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::Message;

/// Key version of offset commits as Kafka writes them (0 is read too).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
pub const CONSUMER_GROUP_METADATA_KEY_VERSION: i16 = 3;
pub const CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION: i16 = 4;
pub const CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION: i16 = 5;
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION: i16 = 6;
pub const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION: i16 = 7;
pub const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION: i16 = 8;

/// Value version of an offset commit: 1 carries an explicit expire timestamp (commits
/// of OffsetCommit v1-v4 that asked for a retention time), 3 carries the leader epoch.
pub fn offset_commit_value_version(value: &OffsetCommitValue) -> i16 {
    if value.expire_timestamp >= 0 {
        1
    } else {
        3
    }
}
/// Classic group metadata is written at version 3 (static members' instance ids).
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// One record of `__consumer_offsets`: a key and, unless the record is a tombstone,
/// a value.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordinatorRecord {
    OffsetCommit {
        key: OffsetCommitKey,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        key: GroupMetadataKey,
        value: Option<GroupMetadataValue>,
    },
    ConsumerGroupMetadata {
        key: ConsumerGroupMetadataKey,
        value: Option<ConsumerGroupMetadataValue>,
    },
    ConsumerGroupPartitionMetadata {
        key: ConsumerGroupPartitionMetadataKey,
        value: Option<ConsumerGroupPartitionMetadataValue>,
    },
    ConsumerGroupMemberMetadata {
        key: ConsumerGroupMemberMetadataKey,
        value: Option<ConsumerGroupMemberMetadataValue>,
    },
    ConsumerGroupTargetAssignmentMetadata {
        key: ConsumerGroupTargetAssignmentMetadataKey,
        value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    },
    ConsumerGroupTargetAssignmentMember {
        key: ConsumerGroupTargetAssignmentMemberKey,
        value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    },
    ConsumerGroupCurrentMemberAssignment {
        key: ConsumerGroupCurrentMemberAssignmentKey,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    },
}

fn framed<M: Message>(version: i16, message: &M) -> Result<Bytes, GroupError> {
    let body = message.encode_to_bytes(version)?;
    let mut out = BytesMut::with_capacity(2 + body.len());
    out.put_i16(version);
    out.put_slice(&body);
    Ok(out.freeze())
}

fn framed_value<M: Message>(version: i16, value: &Option<M>) -> Result<Option<Bytes>, GroupError> {
    value.as_ref().map(|value| framed(version, value)).transpose()
}

fn decode_value<M: Message>(value: Option<Bytes>) -> Result<Option<M>, GroupError> {
    let Some(mut value) = value else { return Ok(None) };
    if value.len() < 2 {
        return Err(GroupError::ValueTooShort { bytes: value.len() });
    }
    let version = value.get_i16();
    // A newer value version than we know still starts with the fields we know; Kafka
    // reads it at its highest known version, and so do we.
    let version = version.clamp(M::VERSIONS.min, M::VERSIONS.max);
    Ok(Some(M::decode(&mut value, version)?))
}

impl CoordinatorRecord {
    /// The group the record belongs to.
    pub fn group_id(&self) -> &str {
        match self {
            CoordinatorRecord::OffsetCommit { key, .. } => &key.group,
            CoordinatorRecord::GroupMetadata { key, .. } => &key.group,
            CoordinatorRecord::ConsumerGroupMetadata { key, .. } => &key.group_id,
            CoordinatorRecord::ConsumerGroupPartitionMetadata { key, .. } => &key.group_id,
            CoordinatorRecord::ConsumerGroupMemberMetadata { key, .. } => &key.group_id,
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata { key, .. } => &key.group_id,
            CoordinatorRecord::ConsumerGroupTargetAssignmentMember { key, .. } => &key.group_id,
            CoordinatorRecord::ConsumerGroupCurrentMemberAssignment { key, .. } => &key.group_id,
        }
    }

    /// The record's key and value bytes (value `None` for a tombstone).
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), GroupError> {
        Ok(match self {
            CoordinatorRecord::OffsetCommit { key, value } => (
                framed(OFFSET_COMMIT_KEY_VERSION, key)?,
                value.as_ref().map(|value| framed(offset_commit_value_version(value), value)).transpose()?,
            ),
            CoordinatorRecord::GroupMetadata { key, value } => {
                (framed(GROUP_METADATA_KEY_VERSION, key)?, framed_value(GROUP_METADATA_VALUE_VERSION, value)?)
            }
            CoordinatorRecord::ConsumerGroupMetadata { key, value } => {
                (framed(CONSUMER_GROUP_METADATA_KEY_VERSION, key)?, framed_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupPartitionMetadata { key, value } => {
                (framed(CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION, key)?, framed_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupMemberMetadata { key, value } => {
                (framed(CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION, key)?, framed_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata { key, value } => {
                (framed(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION, key)?, framed_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupTargetAssignmentMember { key, value } => {
                (framed(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION, key)?, framed_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupCurrentMemberAssignment { key, value } => {
                (framed(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION, key)?, framed_value(0, value)?)
            }
        })
    }

    /// Decodes one record; `Ok(None)` for record kinds this broker does not serve
    /// (share groups), which loading skips.
    pub fn decode(mut key: Bytes, value: Option<Bytes>) -> Result<Option<CoordinatorRecord>, GroupError> {
        if key.len() < 2 {
            return Err(GroupError::KeyTooShort { bytes: key.len() });
        }
        let key_version = key.get_i16();
        let record = match key_version {
            0 | 1 => CoordinatorRecord::OffsetCommit {
                key: OffsetCommitKey::decode(&mut key, key_version)?,
                value: decode_value(value)?,
            },
            GROUP_METADATA_KEY_VERSION => CoordinatorRecord::GroupMetadata {
                key: GroupMetadataKey::decode(&mut key, key_version)?,
                value: decode_value(value)?,
            },
            CONSUMER_GROUP_METADATA_KEY_VERSION => CoordinatorRecord::ConsumerGroupMetadata {
                key: ConsumerGroupMetadataKey::decode(&mut key, key_version)?,
                value: decode_value(value)?,
            },
            CONSUMER_GROUP_PARTITION_METADATA_KEY_VERSION => CoordinatorRecord::ConsumerGroupPartitionMetadata {
                key: ConsumerGroupPartitionMetadataKey::decode(&mut key, key_version)?,
                value: decode_value(value)?,
            },
            CONSUMER_GROUP_MEMBER_METADATA_KEY_VERSION => CoordinatorRecord::ConsumerGroupMemberMetadata {
                key: ConsumerGroupMemberMetadataKey::decode(&mut key, key_version)?,
                value: decode_value(value)?,
            },
            CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY_VERSION => {
                CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
                    key: ConsumerGroupTargetAssignmentMetadataKey::decode(&mut key, key_version)?,
                    value: decode_value(value)?,
                }
            }
            CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY_VERSION => {
                CoordinatorRecord::ConsumerGroupTargetAssignmentMember {
                    key: ConsumerGroupTargetAssignmentMemberKey::decode(&mut key, key_version)?,
                    value: decode_value(value)?,
                }
            }
            CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY_VERSION => {
                CoordinatorRecord::ConsumerGroupCurrentMemberAssignment {
                    key: ConsumerGroupCurrentMemberAssignmentKey::decode(&mut key, key_version)?,
                    value: decode_value(value)?,
                }
            }
            // Share-group records (9-15) and kinds newer than this broker: skipped, so
            // a log written by a newer Kafka still loads what this broker serves.
            _ => return Ok(None),
        };
        Ok(Some(record))
    }
}
