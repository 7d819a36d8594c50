//! The frames voters exchange on the controller listener, in Kafka's framing: a
//! 4-byte size, a request header (v1: api key, version, correlation id, client id)
//! and a body. raft-rs pushes its own message types (append, heartbeat, vote,
//! snapshot), which have no counterpart among KRaft's pull-based APIs, so they
//! travel under an API key of Gregor's own, outside the range Kafka assigns. A
//! frame is one-way; the receiver answers only to refuse it (another cluster),
//! with a response frame carrying the error code, and then closes the connection.

use crate::QuorumError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::prelude::Message;

/// Gregor's private API key for Raft messages between voters.
pub const RAFT_MESSAGES_API_KEY: i16 = 32_000;
/// Messages in one frame, and bytes in one message: bounds checked before allocating.
pub const MESSAGES_PER_FRAME_MAX: usize = 4096;
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Raft messages from one node to another.
#[derive(Debug, Clone)]
pub struct RaftFrame {
    pub cluster_id: String,
    pub from_node: i32,
    pub messages: Vec<Message>,
}

/// Encodes a frame with its size prefix.
pub fn encode_frame(frame: &RaftFrame, correlation_id: i32) -> Result<Bytes, QuorumError> {
    let mut body = BytesMut::new();
    body.put_i16(RAFT_MESSAGES_API_KEY);
    body.put_i16(0);
    body.put_i32(correlation_id);
    put_string(&mut body, "gregor-quorum")?;
    put_string(&mut body, &frame.cluster_id)?;
    body.put_i32(frame.from_node);
    let count = i32::try_from(frame.messages.len()).map_err(|_| QuorumError::Malformed("too many messages".into()))?;
    body.put_i32(count);
    for message in &frame.messages {
        let bytes =
            protobuf::Message::write_to_bytes(message).map_err(|error| QuorumError::Malformed(error.to_string()))?;
        let len = i32::try_from(bytes.len()).map_err(|_| QuorumError::Malformed("message too large".into()))?;
        body.put_i32(len);
        body.put_slice(&bytes);
    }
    let size = i32::try_from(body.len()).map_err(|_| QuorumError::Malformed("frame too large".into()))?;
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(size);
    framed.put_slice(&body);
    Ok(framed.freeze())
}

/// Whether a frame (without its size prefix) carries Raft messages.
pub fn is_raft_frame(frame: &[u8]) -> bool {
    frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == RAFT_MESSAGES_API_KEY
}

/// Decodes a frame without its size prefix. Returns the correlation id and the frame.
pub fn decode_frame(mut frame: Bytes) -> Result<(i32, RaftFrame), QuorumError> {
    let api_key = get_i16(&mut frame)?;
    if api_key != RAFT_MESSAGES_API_KEY {
        return Err(QuorumError::Malformed(format!("api key {api_key} is not Raft messages")));
    }
    let _version = get_i16(&mut frame)?;
    let correlation_id = get_i32(&mut frame)?;
    let _client_id = get_string(&mut frame)?;
    let cluster_id = get_string(&mut frame)?;
    let from_node = get_i32(&mut frame)?;
    let count = get_i32(&mut frame)?;
    let count = usize::try_from(count).map_err(|_| QuorumError::Malformed(format!("message count {count}")))?;
    if count > MESSAGES_PER_FRAME_MAX {
        return Err(QuorumError::Malformed(format!("{count} messages in one frame")));
    }
    let mut messages = Vec::with_capacity(count);
    for _ in 0..count {
        let len = get_i32(&mut frame)?;
        let len = usize::try_from(len).map_err(|_| QuorumError::Malformed(format!("message length {len}")))?;
        if len > MESSAGE_BYTES_MAX || len > frame.remaining() {
            return Err(QuorumError::Malformed(format!("message length {len}")));
        }
        let bytes = frame.split_to(len);
        let message: Message =
            protobuf::Message::parse_from_bytes(&bytes).map_err(|error| QuorumError::Malformed(error.to_string()))?;
        messages.push(message);
    }
    Ok((correlation_id, RaftFrame { cluster_id, from_node, messages }))
}

/// The refusal a receiver sends back: correlation id, error code, message.
pub fn encode_refusal(correlation_id: i32, error_code: i16, message: &str) -> Result<Bytes, QuorumError> {
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    body.put_i16(error_code);
    put_string(&mut body, message)?;
    let size = i32::try_from(body.len()).map_err(|_| QuorumError::Malformed("refusal too large".into()))?;
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(size);
    framed.put_slice(&body);
    Ok(framed.freeze())
}

/// Decodes a refusal (without its size prefix): the error code and message.
pub fn decode_refusal(mut frame: Bytes) -> Result<(i16, String), QuorumError> {
    let _correlation_id = get_i32(&mut frame)?;
    let code = get_i16(&mut frame)?;
    let message = get_string(&mut frame)?;
    Ok((code, message))
}

fn put_string(buf: &mut BytesMut, value: &str) -> Result<(), QuorumError> {
    let len = i16::try_from(value.len()).map_err(|_| QuorumError::Malformed("string too long".into()))?;
    buf.put_i16(len);
    buf.put_slice(value.as_bytes());
    Ok(())
}

fn get_i16(buf: &mut Bytes) -> Result<i16, QuorumError> {
    if buf.remaining() < 2 {
        return Err(QuorumError::Malformed("truncated frame".into()));
    }
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut Bytes) -> Result<i32, QuorumError> {
    if buf.remaining() < 4 {
        return Err(QuorumError::Malformed("truncated frame".into()));
    }
    Ok(buf.get_i32())
}

fn get_string(buf: &mut Bytes) -> Result<String, QuorumError> {
    let len = get_i16(buf)?;
    let len = usize::try_from(len).map_err(|_| QuorumError::Malformed(format!("string length {len}")))?;
    if len > buf.remaining() {
        return Err(QuorumError::Malformed("truncated string".into()));
    }
    let bytes = buf.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| QuorumError::Malformed("string is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::prelude::MessageType;

    #[test]
    fn frames_round_trip_and_truncations_are_refused() {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgHeartbeat);
        message.to = 2;
        message.from = 1;
        message.term = 7;
        let frame = RaftFrame { cluster_id: "abc".into(), from_node: 1, messages: vec![message.clone(), message] };
        let bytes = encode_frame(&frame, 9).unwrap();
        let body = bytes.slice(4..);
        assert!(is_raft_frame(&body));
        let (correlation_id, decoded) = decode_frame(body.clone()).unwrap();
        assert_eq!(correlation_id, 9);
        assert_eq!(decoded.cluster_id, "abc");
        assert_eq!(decoded.messages.len(), 2);
        assert_eq!(decoded.messages[0].term, 7);
        for cut in 0..body.len() {
            assert!(decode_frame(body.slice(..cut)).is_err(), "a frame cut at {cut} decoded");
        }
    }

    #[test]
    fn refusals_round_trip() {
        let bytes = encode_refusal(3, 104, "other cluster").unwrap();
        assert_eq!(decode_refusal(bytes.slice(4..)).unwrap(), (104, "other cluster".to_owned()));
    }
}

/// Gregor's private API key for a broker-only node's fetch of committed metadata
/// (KRaft's observers fetch the metadata log the same way, with Fetch).
pub const METADATA_FETCH_API_KEY: i16 = 32_001;
/// Bytes of entries one metadata fetch answer carries at most (one entry is sent
/// whole even when larger).
pub const METADATA_FETCH_BYTES_MAX: usize = 8 * 1024 * 1024;

/// An observer's request: the committed entries after `after_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFetch {
    pub cluster_id: String,
    pub node_id: i32,
    pub after_index: u64,
}

/// The answer: the leader as the voter knows it, the commit index, and either
/// committed entries (index, data) or, when the log before them is trimmed, the
/// snapshot to start from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataFetchAnswer {
    pub error_code: i16,
    pub leader_id: i32,
    pub commit_index: u64,
    pub snapshot: Option<(u64, Bytes)>,
    pub entries: Vec<(u64, Bytes)>,
}

/// Whether a frame (without its size prefix) is a metadata fetch.
pub fn is_metadata_fetch(frame: &[u8]) -> bool {
    frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == METADATA_FETCH_API_KEY
}

pub fn encode_metadata_fetch(fetch: &MetadataFetch, correlation_id: i32) -> Result<Bytes, QuorumError> {
    let mut body = BytesMut::new();
    body.put_i16(METADATA_FETCH_API_KEY);
    body.put_i16(0);
    body.put_i32(correlation_id);
    put_string(&mut body, "gregor-observer")?;
    put_string(&mut body, &fetch.cluster_id)?;
    body.put_i32(fetch.node_id);
    body.put_u64(fetch.after_index);
    framed(body)
}

/// Decodes a fetch (without its size prefix): the correlation id and the fetch.
pub fn decode_metadata_fetch(mut frame: Bytes) -> Result<(i32, MetadataFetch), QuorumError> {
    let api_key = get_i16(&mut frame)?;
    if api_key != METADATA_FETCH_API_KEY {
        return Err(QuorumError::Malformed(format!("api key {api_key} is not a metadata fetch")));
    }
    let _version = get_i16(&mut frame)?;
    let correlation_id = get_i32(&mut frame)?;
    let _client_id = get_string(&mut frame)?;
    let cluster_id = get_string(&mut frame)?;
    let node_id = get_i32(&mut frame)?;
    if frame.remaining() < 8 {
        return Err(QuorumError::Malformed("truncated frame".into()));
    }
    let after_index = frame.get_u64();
    Ok((correlation_id, MetadataFetch { cluster_id, node_id, after_index }))
}

pub fn encode_metadata_fetch_answer(answer: &MetadataFetchAnswer, correlation_id: i32) -> Result<Bytes, QuorumError> {
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    body.put_i16(answer.error_code);
    body.put_i32(answer.leader_id);
    body.put_u64(answer.commit_index);
    match &answer.snapshot {
        Some((index, data)) => {
            body.put_i8(1);
            body.put_u64(*index);
            put_bytes(&mut body, data)?;
        }
        None => body.put_i8(0),
    }
    let count = i32::try_from(answer.entries.len()).map_err(|_| QuorumError::Malformed("too many entries".into()))?;
    body.put_i32(count);
    for (index, data) in &answer.entries {
        body.put_u64(*index);
        put_bytes(&mut body, data)?;
    }
    framed(body)
}

/// Decodes an answer (without its size prefix).
pub fn decode_metadata_fetch_answer(mut frame: Bytes) -> Result<MetadataFetchAnswer, QuorumError> {
    let _correlation_id = get_i32(&mut frame)?;
    let error_code = get_i16(&mut frame)?;
    let leader_id = get_i32(&mut frame)?;
    let commit_index = get_u64(&mut frame)?;
    if frame.remaining() < 1 {
        return Err(QuorumError::Malformed("truncated frame".into()));
    }
    let snapshot = match frame.get_i8() {
        0 => None,
        _ => {
            let index = get_u64(&mut frame)?;
            Some((index, get_bytes(&mut frame)?))
        }
    };
    let count = get_i32(&mut frame)?;
    let count = usize::try_from(count).map_err(|_| QuorumError::Malformed(format!("entry count {count}")))?;
    // Each entry takes at least 12 bytes: a count past that is a lie.
    if count > frame.remaining() / 12 {
        return Err(QuorumError::Malformed(format!("{count} entries in {} bytes", frame.remaining())));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let index = get_u64(&mut frame)?;
        entries.push((index, get_bytes(&mut frame)?));
    }
    Ok(MetadataFetchAnswer { error_code, leader_id, commit_index, snapshot, entries })
}

fn framed(body: BytesMut) -> Result<Bytes, QuorumError> {
    let size = i32::try_from(body.len()).map_err(|_| QuorumError::Malformed("frame too large".into()))?;
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(size);
    framed.put_slice(&body);
    Ok(framed.freeze())
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) -> Result<(), QuorumError> {
    let len = i32::try_from(bytes.len()).map_err(|_| QuorumError::Malformed("bytes too long".into()))?;
    buf.put_i32(len);
    buf.put_slice(bytes);
    Ok(())
}

fn get_bytes(buf: &mut Bytes) -> Result<Bytes, QuorumError> {
    let len = get_i32(buf)?;
    let len = usize::try_from(len).map_err(|_| QuorumError::Malformed(format!("bytes length {len}")))?;
    if len > buf.remaining() {
        return Err(QuorumError::Malformed("truncated bytes".into()));
    }
    Ok(buf.split_to(len))
}

fn get_u64(buf: &mut Bytes) -> Result<u64, QuorumError> {
    if buf.remaining() < 8 {
        return Err(QuorumError::Malformed("truncated frame".into()));
    }
    Ok(buf.get_u64())
}

#[cfg(test)]
mod fetch_tests {
    use super::*;

    #[test]
    fn metadata_fetches_and_answers_round_trip_and_truncations_are_refused() {
        let fetch = MetadataFetch { cluster_id: "c".into(), node_id: 4, after_index: 17 };
        let bytes = encode_metadata_fetch(&fetch, 3).unwrap();
        assert!(is_metadata_fetch(&bytes[4..]));
        assert_eq!(decode_metadata_fetch(bytes.slice(4..)).unwrap(), (3, fetch));
        let answer = MetadataFetchAnswer {
            error_code: 0,
            leader_id: 2,
            commit_index: 20,
            snapshot: Some((10, Bytes::from_static(b"snap"))),
            entries: vec![(11, Bytes::from_static(b"a")), (12, Bytes::new())],
        };
        let bytes = encode_metadata_fetch_answer(&answer, 3).unwrap();
        let body = bytes.slice(4..);
        assert_eq!(decode_metadata_fetch_answer(body.clone()).unwrap(), answer);
        for cut in 0..body.len() {
            assert!(decode_metadata_fetch_answer(body.slice(..cut)).is_err(), "cut at {cut} decoded");
        }
    }
}
