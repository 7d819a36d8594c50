//! Request and response framing: the header version that goes with each API
//! version, decoding a whole request frame, encoding a whole response frame.
//!
//! A frame on the wire is an `i32` size followed by that many bytes; the
//! functions here take and produce the bytes after the size prefix, except the
//! `*_frame` encoders, which include it.

use crate::codec::{Message, WriteBuf};
use crate::error::{DecodeError, EncodeError};
use crate::generated::{ApiKey, RequestBody, RequestHeader, ResponseBody, ResponseHeader};
use bytes::{BufMut, Bytes};

/// The request header version used with `api_key` at `api_version`.
pub fn request_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key.flexible_versions().contains(api_version) {
        2
    } else {
        1
    }
}

/// The response header version used with `api_key` at `api_version`.
/// ApiVersions always answers with header v0 so that a client that does not yet
/// know the broker's versions can parse the answer.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key != ApiKey::ApiVersions && api_key.flexible_versions().contains(api_version) {
        1
    } else {
        0
    }
}

/// The first fields of every request header, readable before the API is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the API key, version and correlation id without consuming the frame, so
/// a broker can answer even a request it cannot decode.
pub fn peek_request_prefix(frame: &[u8]) -> Result<RequestPrefix, DecodeError> {
    let prefix: [u8; 8] = frame
        .get(..8)
        .and_then(|p| p.try_into().ok())
        .ok_or(DecodeError::UnexpectedEof { needed: 8, remaining: frame.len() })?;
    Ok(RequestPrefix {
        api_key: i16::from_be_bytes([prefix[0], prefix[1]]),
        api_version: i16::from_be_bytes([prefix[2], prefix[3]]),
        correlation_id: i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]),
    })
}

/// A decoded request: its header, its API and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestBody,
}

/// Decodes a request frame (without its size prefix). Bytes after the body are
/// ignored, as Kafka does, so newer clients' trailing data cannot break parsing.
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest, DecodeError> {
    let prefix = peek_request_prefix(&frame)?;
    let api_key = ApiKey::from_i16(prefix.api_key).ok_or(DecodeError::UnknownApiKey(prefix.api_key))?;
    if !api_key.versions().contains(prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion { message: api_key.name(), version: prefix.api_version });
    }
    let header = RequestHeader::decode(&mut frame, request_header_version(api_key, prefix.api_version))?;
    let body = RequestBody::decode(api_key, prefix.api_version, &mut frame)?;
    Ok(DecodedRequest { header, api_key, body })
}

/// Encodes a request frame, size prefix included, as a client would send it.
pub fn encode_request_frame(header: &RequestHeader, body: &RequestBody) -> Result<WriteBuf, EncodeError> {
    let api_key = body.api_key();
    let mut inner = WriteBuf::new();
    header.encode(&mut inner, request_header_version(api_key, header.request_api_version))?;
    body.encode(&mut inner, header.request_api_version)?;
    with_size_prefix(inner)
}

/// Encodes a response frame, size prefix included. The record bytes of Fetch
/// responses stay shared chunks of the returned buffer.
pub fn encode_response_frame(
    correlation_id: i32,
    api_version: i16,
    body: &ResponseBody,
) -> Result<WriteBuf, EncodeError> {
    let api_key = body.api_key();
    let mut inner = WriteBuf::new();
    let header = ResponseHeader { correlation_id, ..Default::default() };
    header.encode(&mut inner, response_header_version(api_key, api_version))?;
    body.encode(&mut inner, api_version)?;
    with_size_prefix(inner)
}

/// Decodes a response frame (without its size prefix) of a request the caller sent.
pub fn decode_response(
    mut frame: Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, response_header_version(api_key, api_version))?;
    let body = ResponseBody::decode(api_key, api_version, &mut frame)?;
    Ok((header, body))
}

fn with_size_prefix(inner: WriteBuf) -> Result<WriteBuf, EncodeError> {
    let size = i32::try_from(inner.len()).map_err(|_| EncodeError::TooLong { what: "frame", length: inner.len() })?;
    let mut frame = WriteBuf::with_capacity(4);
    frame.put_i32(size);
    frame.append(inner);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::{ApiVersionsRequest, MetadataRequest};

    #[test]
    fn header_versions_follow_flexibility() {
        assert_eq!(request_header_version(ApiKey::Metadata, 8), 1);
        assert_eq!(request_header_version(ApiKey::Metadata, 9), 2);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
        assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
    }

    #[test]
    fn request_frame_round_trips() {
        for version in [0, 3, 4] {
            let header = RequestHeader {
                request_api_key: ApiKey::ApiVersions.key(),
                request_api_version: version,
                correlation_id: 42,
                client_id: Some("gregor-test".into()),
                ..Default::default()
            };
            let mut body = ApiVersionsRequest::default();
            if version >= 3 {
                body.client_software_name = "gregor".into();
            }
            let frame = encode_request_frame(&header, &body.clone().into()).unwrap().freeze();
            let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
            assert_eq!(size as usize, frame.len() - 4);
            let decoded = decode_request(frame.slice(4..)).unwrap();
            assert_eq!(decoded.header, header);
            assert_eq!(decoded.body, RequestBody::ApiVersions(body));
        }
    }

    #[test]
    fn unknown_key_and_version_are_typed_errors() {
        let mut raw = vec![0x7f, 0x00, 0, 0, 0, 0, 0, 1];
        assert_eq!(decode_request(Bytes::from(raw.clone())), Err(DecodeError::UnknownApiKey(0x7f00)));
        raw[0] = 0;
        raw[1] = 3;
        raw[3] = 99;
        assert!(matches!(decode_request(Bytes::from(raw)), Err(DecodeError::UnsupportedVersion { .. })));
        let _ = MetadataRequest::default();
    }
}
