//! The records of `__transaction_state`, in Kafka's framing.
//!
//! A record's key is a big-endian int16 key version (0) followed by
//! `TransactionLogKey { transactional_id }`; its value is an int16 value version
//! followed by `TransactionLogValue`, or null (a tombstone) when the transactional id
//! expired. Value version 0 is what Kafka writes while `transaction.version` is 0;
//! version 1 is flexible and carries the previous and next producer ids and the
//! client's transaction version as tagged fields.

use crate::error::TxnError;
use crate::state::TxnState;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::messages::transaction_log_key::TransactionLogKey;
use gregor_protocol::messages::transaction_log_value::{PartitionsSchema, TransactionLogValue};
use gregor_protocol::Message;
use std::collections::{BTreeMap, BTreeSet};

/// The only key version of `__transaction_state`.
pub const TRANSACTION_LOG_KEY_VERSION: i16 = 0;

/// The value of one transaction record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    /// The value version it is (or was) written at: 0 or 1.
    pub version: i16,
    pub producer_id: i64,
    /// -1 unless set (version 1 only).
    pub previous_producer_id: i64,
    /// -1 unless set (version 1 only).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_timestamp_ms: i64,
    pub start_timestamp_ms: i64,
    /// 0 unless set (version 1 only).
    pub client_transaction_version: i16,
}

/// One record of `__transaction_state`: a transactional id and its state, or a
/// tombstone (`value: None`) that removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnValue>,
}

fn framed<M: Message>(version: i16, message: &M) -> Result<Bytes, TxnError> {
    let body = message.encode_to_bytes(version)?;
    let mut out = BytesMut::with_capacity(2 + body.len());
    out.put_i16(version);
    out.put_slice(&body);
    Ok(out.freeze())
}

impl TxnValue {
    fn to_message(&self, version: i16) -> TransactionLogValue {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &self.partitions {
            by_topic.entry(topic.as_str()).or_default().push(*partition);
        }
        // Kafka writes null partitions for Empty, a list otherwise.
        let transaction_partitions = if self.state == TxnState::Empty {
            None
        } else {
            Some(
                by_topic
                    .into_iter()
                    .map(|(topic, partition_ids)| PartitionsSchema {
                        topic: topic.to_string(),
                        partition_ids,
                        ..Default::default()
                    })
                    .collect(),
            )
        };
        let flexible = version >= 1;
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: if flexible { self.previous_producer_id } else { -1 },
            next_producer_id: if flexible { self.next_producer_id } else { -1 },
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.timeout_ms,
            transaction_status: self.state.byte(),
            transaction_partitions,
            transaction_last_update_timestamp_ms: self.last_update_timestamp_ms,
            transaction_start_timestamp_ms: self.start_timestamp_ms,
            client_transaction_version: if flexible { self.client_transaction_version } else { 0 },
            ..Default::default()
        }
    }

    fn from_message(version: i16, value: TransactionLogValue) -> Result<TxnValue, TxnError> {
        let state = TxnState::from_byte(value.transaction_status)
            .ok_or(TxnError::UnknownState { state: value.transaction_status })?;
        let partitions = value
            .transaction_partitions
            .unwrap_or_default()
            .into_iter()
            .flat_map(|schema| {
                let topic = schema.topic;
                schema.partition_ids.into_iter().map(move |partition| (topic.clone(), partition))
            })
            .collect();
        Ok(TxnValue {
            version,
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            next_producer_id: value.next_producer_id,
            producer_epoch: value.producer_epoch,
            timeout_ms: value.transaction_timeout_ms,
            state,
            partitions,
            last_update_timestamp_ms: value.transaction_last_update_timestamp_ms,
            start_timestamp_ms: value.transaction_start_timestamp_ms,
            client_transaction_version: value.client_transaction_version,
        })
    }
}

impl TxnRecord {
    /// The record's key and value bytes (value `None` for a tombstone).
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), TxnError> {
        let key = TransactionLogKey { transactional_id: self.transactional_id.clone(), ..Default::default() };
        let key = framed(TRANSACTION_LOG_KEY_VERSION, &key)?;
        let value = match &self.value {
            None => None,
            Some(value) => {
                let version = value.version.clamp(TransactionLogValue::VERSIONS.min, TransactionLogValue::VERSIONS.max);
                Some(framed(version, &value.to_message(version))?)
            }
        };
        Ok((key, value))
    }

    /// Decodes one record. A value version newer than this broker knows is read at the
    /// highest version it knows (newer versions only add tagged fields).
    pub fn decode(mut key: Bytes, value: Option<Bytes>) -> Result<TxnRecord, TxnError> {
        if key.len() < 2 {
            return Err(TxnError::KeyTooShort { bytes: key.len() });
        }
        let key_version = key.get_i16();
        if key_version != TRANSACTION_LOG_KEY_VERSION {
            return Err(TxnError::UnknownKeyVersion { version: key_version });
        }
        let key = TransactionLogKey::decode(&mut key, key_version)?;
        let value = match value {
            None => None,
            Some(mut value) => {
                if value.len() < 2 {
                    return Err(TxnError::ValueTooShort { bytes: value.len() });
                }
                let version =
                    value.get_i16().clamp(TransactionLogValue::VERSIONS.min, TransactionLogValue::VERSIONS.max);
                let message = TransactionLogValue::decode(&mut value, version)?;
                Some(TxnValue::from_message(version, message)?)
            }
        };
        Ok(TxnRecord { transactional_id: key.transactional_id, value })
    }
}

/// The `__transaction_state` partition that coordinates `transactional_id`: Java's
/// `String.hashCode`, made non-negative as Kafka's `Utils.abs` does, modulo the
/// partition count (`transaction.state.log.num.partitions`, 50 by default).
pub fn partition_for_transactional_id(transactional_id: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in transactional_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let non_negative = if hash == i32::MIN { 0 } else { hash.abs() };
    non_negative % partitions.max(1)
}
