//! A Kafka connection over tokio TCP: size-prefixed frames in and out, the
//! versions the peer serves (from ApiVersions), and one-at-a-time calls for the
//! control plane. The produce hot path takes the halves apart and pipelines.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::frame::{decode_response, encode_request_frame};
use gregor_protocol::messages::{ApiVersionsRequest, RequestHeader};
use gregor_protocol::{ApiKey, ErrorCode, RequestBody, ResponseBody};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::error::PerfError;

/// The client id every request of the tool carries.
pub const CLIENT_ID: &str = "gregor-perf";
/// The largest frame read from a peer unless a caller asks for more (fetch).
pub const FRAME_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// How long a control-plane call may take, connect included.
pub const CALL_TIMEOUT_MS: u64 = 30_000;
/// Reads ask the kernel for at least this much, so a large frame costs few syscalls.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Reads size-prefixed frames. Bytes after a frame stay buffered for the next,
/// and a frame is handed out as a slice of the read buffer, not a copy.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buffer: BytesMut,
    frame_bytes_max: usize,
    peer: String,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, frame_bytes_max: usize, peer: String) -> Self {
        Self { inner, buffer: BytesMut::with_capacity(READ_CHUNK_BYTES), frame_bytes_max, peer }
    }

    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.frame_bytes_max = frame_bytes_max;
    }

    /// The next frame without its size prefix, or `None` at a clean end of stream.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, PerfError> {
        loop {
            if let Some(prefix) = self.buffer.first_chunk::<4>() {
                let size = i32::from_be_bytes(*prefix);
                let size =
                    usize::try_from(size).ok().filter(|size| *size <= self.frame_bytes_max).ok_or_else(|| {
                        PerfError::protocol(
                            &self.peer,
                            format!("frame of {size} bytes (at most {})", self.frame_bytes_max),
                        )
                    })?;
                if self.buffer.len() >= 4 + size {
                    self.buffer.advance(4);
                    return Ok(Some(self.buffer.split_to(size).freeze()));
                }
                self.buffer.reserve((4 + size - self.buffer.len()).max(READ_CHUNK_BYTES));
            } else {
                self.buffer.reserve(READ_CHUNK_BYTES);
            }
            let read = self
                .inner
                .read_buf(&mut self.buffer)
                .await
                .map_err(|error| PerfError::io(format!("reading from {}", self.peer), error))?;
            if read == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(PerfError::protocol(&self.peer, "connection closed in the middle of a frame"));
            }
        }
    }

    /// Whether a whole frame is already buffered, so reading it needs no syscall.
    pub fn has_buffered_frame(&self) -> bool {
        self.buffer
            .first_chunk::<4>()
            .and_then(|prefix| usize::try_from(i32::from_be_bytes(*prefix)).ok())
            .is_some_and(|size| self.buffer.len() >= 4 + size)
    }

    /// The next frame; the end of the stream is an error.
    pub async fn frame(&mut self) -> Result<Bytes, PerfError> {
        match self.next_frame().await? {
            Some(frame) => Ok(frame),
            None => Err(PerfError::protocol(&self.peer, "connection closed while a response was due")),
        }
    }
}

/// The version ranges a peer serves, by API key.
#[derive(Debug, Clone, Default)]
pub struct ApiVersionTable {
    ranges: HashMap<i16, (i16, i16)>,
    address: String,
}

impl ApiVersionTable {
    pub fn new(address: &str, ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        let ranges = ranges.into_iter().map(|(key, min, max)| (key, (min, max))).collect();
        Self { ranges, address: address.to_owned() }
    }

    /// The highest version both sides speak, when this tool speaks `client_min..=client_max`.
    pub fn pick(&self, api: ApiKey, client_min: i16, client_max: i16) -> Result<i16, PerfError> {
        let &(broker_min, broker_max) = self
            .ranges
            .get(&api.key())
            .ok_or_else(|| PerfError::UnsupportedApi { address: self.address.clone(), api })?;
        let version = broker_max.min(client_max);
        if version < broker_min.max(client_min) {
            return Err(PerfError::UnsupportedVersion {
                address: self.address.clone(),
                api,
                broker_min,
                broker_max,
                client_min,
                client_max,
            });
        }
        Ok(version)
    }
}

/// Encodes a whole request frame (size prefix included) into one buffer.
pub fn request_frame(body: &RequestBody, version: i16, correlation_id: i32) -> Result<Vec<u8>, PerfError> {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.key(),
        request_api_version: version,
        correlation_id,
        client_id: Some(CLIENT_ID.to_owned()),
        ..Default::default()
    };
    let frame = encode_request_frame(&header, body).map_err(|source| PerfError::Encode { api, version, source })?;
    Ok(frame.to_vec())
}

/// Decodes a response frame after checking it answers `correlation_id`.
pub fn response_body(
    address: &str,
    frame: Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<ResponseBody, PerfError> {
    let answered = frame.first_chunk::<4>().map(|id| i32::from_be_bytes(*id));
    if answered != Some(correlation_id) {
        return Err(PerfError::protocol(
            address,
            format!("answer to correlation id {answered:?}, {correlation_id} expected"),
        ));
    }
    let (_, body) =
        decode_response(frame, api, version).map_err(|source| PerfError::Decode { api, version, source })?;
    Ok(body)
}

/// One connection to one broker, with its negotiated versions.
#[derive(Debug)]
pub struct Connection {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    address: String,
    next_correlation_id: i32,
    versions: ApiVersionTable,
}

/// A connection taken apart for pipelining.
pub struct ConnectionParts {
    pub reader: FrameReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
    pub address: String,
    pub next_correlation_id: i32,
    pub versions: ApiVersionTable,
}

impl Connection {
    /// Connects and asks for the peer's API versions.
    pub async fn connect(address: &str) -> Result<Connection, PerfError> {
        let connecting = TcpStream::connect(address);
        let stream = tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), connecting)
            .await
            .map_err(|_| PerfError::Timeout { what: format!("connecting to {address}"), timeout_ms: CALL_TIMEOUT_MS })?
            .map_err(|error| PerfError::io(format!("connecting to {address}"), error))?;
        // Requests are whole frames written at once: waiting to coalesce them only adds latency.
        stream.set_nodelay(true).map_err(|error| PerfError::io(format!("TCP_NODELAY on {address}"), error))?;
        let (read, writer) = stream.into_split();
        let mut connection = Connection {
            reader: FrameReader::new(read, FRAME_BYTES_MAX_DEFAULT, address.to_owned()),
            writer,
            address: address.to_owned(),
            next_correlation_id: 0,
            versions: ApiVersionTable::default(),
        };
        connection.versions = connection.api_versions().await?;
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.reader.set_frame_bytes_max(frame_bytes_max);
    }

    pub fn into_parts(self) -> ConnectionParts {
        ConnectionParts {
            reader: self.reader,
            writer: self.writer,
            address: self.address,
            next_correlation_id: self.next_correlation_id,
            versions: self.versions,
        }
    }

    /// Sends one request and waits for its response.
    pub async fn call(&mut self, body: impl Into<RequestBody>, version: i16) -> Result<ResponseBody, PerfError> {
        self.call_within(body, version, CALL_TIMEOUT_MS).await
    }

    /// [`Connection::call`] with its own time limit (long-polling fetches).
    pub async fn call_within(
        &mut self,
        body: impl Into<RequestBody>,
        version: i16,
        timeout_ms: u64,
    ) -> Result<ResponseBody, PerfError> {
        let body = body.into();
        let api = body.api_key();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1) & i32::MAX;
        let frame = request_frame(&body, version, correlation_id)?;
        let exchange = async {
            self.writer
                .write_all(&frame)
                .await
                .map_err(|error| PerfError::io(format!("writing {api:?} to {}", self.address), error))?;
            self.reader.frame().await
        };
        let response = tokio::time::timeout(Duration::from_millis(timeout_ms), exchange)
            .await
            .map_err(|_| PerfError::Timeout { what: format!("{api:?} to {}", self.address), timeout_ms })??;
        response_body(&self.address, response, api, version, correlation_id)
    }

    async fn api_versions(&mut self) -> Result<ApiVersionTable, PerfError> {
        let request = ApiVersionsRequest {
            client_software_name: CLIENT_ID.to_owned(),
            client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        };
        // v3 first; a broker without it answers in v0's shape, which v3 cannot
        // decode, so any failure there falls back to v0 on a fresh correlation id.
        let answer = match self.call(request, 3).await {
            Ok(ResponseBody::ApiVersions(answer)) if answer.error_code == 0 => answer,
            Ok(_) | Err(PerfError::Decode { .. }) => match self.call(ApiVersionsRequest::default(), 0).await? {
                ResponseBody::ApiVersions(answer) => answer,
                _ => return Err(PerfError::protocol(&self.address, "ApiVersions answered with another API")),
            },
            Err(other) => return Err(other),
        };
        if answer.error_code != ErrorCode::None.code() {
            return Err(PerfError::broker(format!("ApiVersions from {}", self.address), answer.error_code));
        }
        Ok(ApiVersionTable::new(
            &self.address,
            answer.api_keys.iter().map(|key| (key.api_key, key.min_version, key.max_version)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_common_version() {
        let table = ApiVersionTable::new("b:1", [(ApiKey::Fetch.key(), 4, 18), (ApiKey::Produce.key(), 3, 9)]);
        assert_eq!(table.pick(ApiKey::Fetch, 4, 12).unwrap(), 12);
        assert_eq!(table.pick(ApiKey::Produce, 3, 13).unwrap(), 9);
        assert!(matches!(table.pick(ApiKey::Produce, 10, 13), Err(PerfError::UnsupportedVersion { .. })));
        assert!(matches!(table.pick(ApiKey::Metadata, 0, 12), Err(PerfError::UnsupportedApi { .. })));
    }

    #[tokio::test]
    async fn frames_split_across_reads_and_joined_in_one() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(server, 1024, "peer".into());
        let writing = tokio::spawn(async move {
            let mut bytes = Vec::new();
            for body in [&b"abc"[..], &[7u8; 300][..], b""] {
                bytes.extend_from_slice(&(body.len() as i32).to_be_bytes());
                bytes.extend_from_slice(body);
            }
            client.write_all(&bytes).await.unwrap();
        });
        assert_eq!(&reader.frame().await.unwrap()[..], b"abc");
        assert_eq!(reader.frame().await.unwrap().len(), 300);
        assert_eq!(reader.frame().await.unwrap().len(), 0);
        writing.await.unwrap();
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_reading_them() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(&4096i32.to_be_bytes()).await.unwrap();
        let mut reader = FrameReader::new(server, 1024, "peer".into());
        assert!(matches!(reader.frame().await, Err(PerfError::Protocol { .. })));
    }
}
