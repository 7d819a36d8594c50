//! One client connection: read size-prefixed frames, answer each request in the
//! order it arrived, close on protocol violations.
//!
//! A reader task reads frames ahead into a bounded queue while the current request
//! is being handled, so decoding overlaps work without reordering answers, and a
//! writer task sends the answers in order; a produce waiting for its fdatasync
//! does not hold up the requests behind it (group commit). The size prefix is
//! checked against `socket.request.max.bytes` before any allocation.

use crate::api_versions::{is_supported, supported_range};
use crate::broker::Broker;
use crate::dispatch::{dispatch, Outcome};
use crate::zero_copy;
use bytes::{Buf, Bytes, BytesMut};
use gregor_protocol::frame::{decode_request, encode_response_frame, peek_request_prefix};
use gregor_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use gregor_protocol::{ApiKey, DecodeError, ErrorCode, ResponseBody, WriteBuf};
use gregor_storage::FileRegion;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Frames read ahead of the one being handled. Kafka handles one request per
/// connection at a time; a few frames of read-ahead keep the socket busy while
/// bounding the memory one connection can hold.
const READ_AHEAD_FRAMES_MAX: usize = 4;
/// Responses smaller than this are copied into the write buffer; larger chunks
/// (record sets) go to the socket directly.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Answers queued for the writer task. Requests are handled one at a time, but a
/// produce waiting for its fdatasync (`Outcome::Deferred`) lets the next requests
/// proceed; this bounds how many answers one connection may have outstanding.
const ANSWERS_QUEUED_MAX: usize = 8;

/// Serves one connection until the peer closes it, it breaks the protocol, or the
/// broker shuts down (then the requests in flight are finished first).
pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let (frames_tx, mut frames_rx) = mpsc::channel::<Bytes>(READ_AHEAD_FRAMES_MAX);
    let request_bytes_max = broker.config().socket_request_max_bytes;
    let reader = tokio::spawn(read_frames(read_half, frames_tx, request_bytes_max, peer));
    let (answers_tx, answers_rx) = mpsc::channel::<Reply>(ANSWERS_QUEUED_MAX);
    let writer = tokio::spawn(write_answers(write_half, answers_rx, peer));
    loop {
        let frame = tokio::select! {
            biased;
            frame = frames_rx.recv() => frame,
            _ = shutdown.changed() => None,
        };
        let Some(frame) = frame else { break };
        let reply = handle_frame(&broker, frame, peer).await;
        let close = matches!(reply, Reply::Close(_));
        // A failed send means the writer stopped (a write error or a close).
        if answers_tx.send(reply).await.is_err() || close {
            break;
        }
    }
    drop(answers_tx);
    // The writer sends what is still queued, deferred answers included, then closes.
    let _ = writer.await;
    reader.abort();
}

enum Reply {
    /// An encoded answer, and the file regions its placeholder chunks stand for.
    Send(WriteBuf, Vec<FileRegion>),
    Nothing,
    Close(String),
    /// An answer a task will produce (`Outcome::Deferred`), sent in its turn.
    Later {
        correlation_id: i32,
        version: i16,
        task: tokio::task::JoinHandle<Outcome>,
    },
}

/// Writes the answers in request order. Pipelined answers share writes: the
/// buffer is flushed when no answer is queued, and before waiting on one that is
/// not ready yet.
async fn write_answers(write_half: OwnedWriteHalf, mut answers: mpsc::Receiver<Reply>, peer: SocketAddr) {
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
    while let Some(mut reply) = answers.recv().await {
        while let Reply::Later { correlation_id, version, task } = reply {
            if !task.is_finished() && writer.flush().await.is_err() {
                return;
            }
            reply = match task.await {
                Ok(outcome) => reply_for(correlation_id, version, outcome),
                Err(error) => Reply::Close(format!("a request task failed: {error}")),
            };
        }
        match reply {
            Reply::Send(encoded, regions) => {
                if let Err(error) = write_chunks(&mut writer, encoded, regions).await {
                    tracing::debug!(%peer, "write failed: {error}");
                    return;
                }
            }
            Reply::Nothing | Reply::Later { .. } => {}
            Reply::Close(reason) => {
                tracing::info!(%peer, "closing connection: {reason}");
                break;
            }
        }
        if answers.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

/// The read buffer's free space, at least, before each read from the socket: small
/// pipelined requests then arrive several per read, and each frame is split off the
/// buffer without a copy.
const READ_BUFFER_BYTES: usize = 64 * 1024;

async fn read_frames(
    mut read_half: OwnedReadHalf,
    frames: mpsc::Sender<Bytes>,
    request_bytes_max: i32,
    peer: SocketAddr,
) {
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        while let Some(prefix) = buffer.get(..4) {
            let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            if size < 0 || size > request_bytes_max {
                tracing::warn!(
                    %peer,
                    "closing connection: request size {size} is outside 0..={request_bytes_max} (socket.request.max.bytes)"
                );
                return;
            }
            let frame_end = 4 + size as usize;
            if buffer.len() < frame_end && size as usize > READ_BUFFER_BYTES {
                // A large frame gets a buffer of its own, exactly its size and allocated
                // only now that the size passed the check, so that nothing else shares
                // it and a produce can stamp its batches in place without a copy.
                buffer.advance(4);
                let mut body = BytesMut::with_capacity(size as usize);
                body.extend_from_slice(&buffer);
                buffer.clear();
                while body.len() < body.capacity() {
                    match read_half.read_buf(&mut body).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                if frames.send(body.freeze()).await.is_err() {
                    return;
                }
                continue;
            }
            if buffer.len() < frame_end {
                buffer.reserve(frame_end - buffer.len());
                break;
            }
            buffer.advance(4);
            let frame = buffer.split_to(size as usize).freeze();
            if frames.send(frame).await.is_err() {
                return;
            }
        }
        if buffer.capacity() - buffer.len() < READ_BUFFER_BYTES / 4 {
            buffer.reserve(READ_BUFFER_BYTES);
        }
        match read_half.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn write_chunks(
    writer: &mut BufWriter<OwnedWriteHalf>,
    encoded: WriteBuf,
    regions: Vec<FileRegion>,
) -> std::io::Result<()> {
    let mut regions = regions.into_iter();
    for chunk in encoded.into_chunks() {
        if !zero_copy::is_placeholder(&chunk) {
            writer.write_all(&chunk).await?;
            continue;
        }
        let region = regions.next().filter(|region| region.len_bytes() == chunk.len()).ok_or_else(|| {
            std::io::Error::other("a response placeholder without its file region (a broker bug): closing")
        })?;
        writer.flush().await?;
        zero_copy::send_region(writer.get_ref().as_ref(), &region).await?;
    }
    Ok(())
}

async fn handle_frame(broker: &Arc<Broker>, frame: Bytes, peer: SocketAddr) -> Reply {
    let prefix = match peek_request_prefix(&frame) {
        Ok(prefix) => prefix,
        Err(error) => return Reply::Close(format!("unreadable request header: {error}")),
    };
    let Some(api_key) = ApiKey::from_i16(prefix.api_key) else {
        return Reply::Close(format!("unknown API key {}", prefix.api_key));
    };
    if !is_supported(api_key, prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            // A client newer than us learns our range from this answer and retries.
            return encode(prefix.correlation_id, 0, ResponseBody::ApiVersions(unsupported_api_versions()), Vec::new());
        }
        return Reply::Close(format!("{} v{} is not supported", api_key.name(), prefix.api_version));
    }
    let request = match decode_request(frame) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion { .. }) if api_key == ApiKey::ApiVersions => {
            return encode(prefix.correlation_id, 0, ResponseBody::ApiVersions(unsupported_api_versions()), Vec::new());
        }
        Err(error) => {
            if api_key == ApiKey::ApiVersions {
                let response = ApiVersionsResponse {
                    error_code: ErrorCode::InvalidRequest.code(),
                    ..ApiVersionsResponse::default()
                };
                return encode(
                    prefix.correlation_id,
                    prefix.api_version,
                    ResponseBody::ApiVersions(response),
                    Vec::new(),
                );
            }
            return Reply::Close(format!("malformed {} v{} request: {error}", api_key.name(), prefix.api_version));
        }
    };
    reply_for(prefix.correlation_id, prefix.api_version, dispatch(broker, request, peer).await)
}

fn reply_for(correlation_id: i32, version: i16, outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Respond(response) => encode(correlation_id, version, response, Vec::new()),
        Outcome::RespondWithRegions(response, regions) => encode(correlation_id, version, response, regions),
        Outcome::NoResponse => Reply::Nothing,
        Outcome::Close(reason) => Reply::Close(reason),
        Outcome::Deferred(task) => Reply::Later { correlation_id, version, task },
    }
}

fn encode(correlation_id: i32, version: i16, response: ResponseBody, regions: Vec<FileRegion>) -> Reply {
    match encode_response_frame(correlation_id, version, &response) {
        Ok(encoded) => Reply::Send(encoded, regions),
        Err(error) => Reply::Close(format!("cannot encode the {:?} response: {error}", response.api_key())),
    }
}

/// The answer to an ApiVersions request at a version we do not serve: error 35
/// with only our ApiVersions range, in the v0 layout every client can read.
fn unsupported_api_versions() -> ApiVersionsResponse {
    let range = supported_range(ApiKey::ApiVersions);
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: range
            .map(|range| ApiVersion {
                api_key: ApiKey::ApiVersions.key(),
                min_version: range.min_version,
                max_version: range.max_version,
                ..ApiVersion::default()
            })
            .into_iter()
            .collect(),
        ..ApiVersionsResponse::default()
    }
}
