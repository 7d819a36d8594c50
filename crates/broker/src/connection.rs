//! One client connection: read size-prefixed frames, answer each request in the
//! order it arrived, close on protocol violations.
//!
//! A reader task reads frames ahead into a bounded queue while the current request
//! is being handled, so decoding overlaps work without reordering answers, and a
//! writer task sends the answers in order; a produce waiting for its fdatasync
//! does not hold up the requests behind it (group commit). The size prefix is
//! checked against `socket.request.max.bytes` before any allocation.
//!
//! Memory is bounded by configuration, not by clients: before a frame's bytes are
//! allocated the reader takes the frame's size from the broker-wide budget of queued
//! request bytes and a place among `queued.max.requests`, and the frame's share of this
//! connection's read-ahead; the bytes go back once the request has been handled. A
//! connection with a request in flight reads ahead only small frames, as Kafka mutes a
//! connection while its request is handled. A connection with nothing in flight and no
//! bytes for `connections.max.idle.ms` is closed.

use crate::api_versions::{is_supported_on, supported_range};
use crate::broker::Broker;
use crate::dispatch::{dispatch, Outcome};
use crate::request_context::{ClientSoftware, ConnectionContext};
use crate::zero_copy;
use bytes::{Buf, Bytes, BytesMut};
use gregor_config::BrokerConfig;
use gregor_protocol::frame::{decode_request, encode_response_frame, peek_request_prefix, DecodedRequest};
use gregor_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use gregor_protocol::{ApiKey, DecodeError, ErrorCode, RequestBody, ResponseBody, WriteBuf};
use gregor_storage::FileRegion;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// Frames read ahead of the one being handled. Kafka handles one request per
/// connection at a time; a few frames of read-ahead keep the socket busy while
/// bounding the memory one connection can hold.
const READ_AHEAD_FRAMES_MAX: usize = 4;
/// Bytes of frames one connection may hold read and not yet handled. A frame takes
/// its size from this, at most all of it: a larger frame is read only once everything
/// before it has been handled (Kafka's mute), while small pipelined requests still
/// read ahead.
const READ_AHEAD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The longest the idle timer sleeps before looking again, so that any
/// `connections.max.idle.ms` (up to years) makes a valid deadline.
const IDLE_CHECK_MAX: Duration = Duration::from_secs(24 * 3600);
/// Responses smaller than this are copied into the write buffer; larger chunks
/// (record sets) go to the socket directly.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Answers queued for the writer task. Requests are handled one at a time, but a
/// produce waiting for its fdatasync (`Outcome::Deferred`) lets the next requests
/// proceed; this bounds how many answers one connection may have outstanding.
const ANSWERS_QUEUED_MAX: usize = 8;

/// The broker-wide bounds on requests read and not yet handled, shared by every
/// connection: Kafka's memory pool (`queued.max.request.bytes`) and request queue
/// (`queued.max.requests`).
pub struct RequestBudget {
    bytes: Arc<Semaphore>,
    bytes_max: u64,
    /// Requests read whose handling has not begun.
    queued: Arc<Semaphore>,
}

impl RequestBudget {
    pub fn new(config: &BrokerConfig) -> RequestBudget {
        let bytes_max = config.queued_request_bytes_budget().min(Semaphore::MAX_PERMITS as u64);
        let queued = usize::try_from(config.queued_max_requests).unwrap_or(1).clamp(1, Semaphore::MAX_PERMITS);
        RequestBudget {
            bytes: Arc::new(Semaphore::new(usize::try_from(bytes_max).unwrap_or(Semaphore::MAX_PERMITS))),
            bytes_max,
            queued: Arc::new(Semaphore::new(queued)),
        }
    }
}

/// A request read off the socket and what it holds until it has been handled.
struct Frame {
    body: Bytes,
    charge: Charge,
    /// Its place among the queued requests, given back when its handling begins.
    queued: OwnedSemaphorePermit,
}

/// A frame's share of the budgets. Dropping it gives the bytes back.
struct Charge {
    _bytes: OwnedSemaphorePermit,
    _read_ahead: OwnedSemaphorePermit,
}

/// When the connection last moved bytes, and how many requests it has read whose
/// answers are not written yet: what `connections.max.idle.ms` looks at.
struct Activity {
    since: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let elapsed_ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(elapsed_ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle, or None while a request is in flight.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.since.elapsed().saturating_sub(last))
    }
}

/// Serves one connection, accepted on the listener named `listener_name`, until the
/// peer closes it, it breaks the protocol, it idles past `connections.max.idle.ms`, or
/// the broker shuts down (then the requests in flight are finished first).
pub async fn serve(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener_name: &str,
    budget: Arc<RequestBudget>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let security_protocol = broker.config().security_protocol(listener_name).unwrap_or("PLAINTEXT").to_owned();
    let mut connection = Arc::new(ConnectionContext::new(listener_name, &security_protocol, peer));
    let (read_half, write_half) = stream.into_split();
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(READ_AHEAD_FRAMES_MAX);
    let config = broker.config();
    let activity =
        Arc::new(Activity { since: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) });
    // Negative disables the idle timeout, as in Kafka.
    let idle_max = u64::try_from(config.connections_max_idle_ms).ok().map(Duration::from_millis);
    let reader = FrameReader {
        read_half,
        frames: frames_tx,
        request_bytes_max: config.socket_request_max_bytes,
        budget,
        read_ahead: Arc::new(Semaphore::new(READ_AHEAD_BYTES_MAX)),
        activity: Arc::clone(&activity),
        idle_max,
        idle_timer: idle_max.map(|idle| Box::pin(tokio::time::sleep(idle.min(IDLE_CHECK_MAX)))),
        peer,
    };
    drop(config);
    let reader = tokio::spawn(reader.run());
    let (answers_tx, answers_rx) = mpsc::channel::<Reply>(ANSWERS_QUEUED_MAX);
    let writer = tokio::spawn(write_answers(write_half, answers_rx, peer, activity));
    loop {
        let frame = tokio::select! {
            biased;
            frame = frames_rx.recv() => frame,
            _ = shutdown.changed() => None,
        };
        let Some(Frame { body, charge, queued }) = frame else { break };
        drop(queued);
        let reply = match handle_frame(&broker, body, &mut connection).await {
            // A deferred request is handled when its task ends: it keeps its bytes till then.
            Reply::Later { correlation_id, version, task, .. } => {
                Reply::Later { correlation_id, version, task, charge: Some(charge) }
            }
            reply => {
                drop(charge);
                reply
            }
        };
        let close = matches!(reply, Reply::Close(_) | Reply::SendThenClose(..));
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
    /// Send this, then close (a refusal).
    SendThenClose(WriteBuf, String),
    /// An answer a task will produce (`Outcome::Deferred`), sent in its turn.
    Later {
        correlation_id: i32,
        version: i16,
        task: tokio::task::JoinHandle<Outcome>,
        /// The request's budget, given back when the task ends.
        charge: Option<Charge>,
    },
}

/// Writes the answers in request order. Pipelined answers share writes: the
/// buffer is flushed when no answer is queued, and before waiting on one that is
/// not ready yet.
async fn write_answers(
    write_half: OwnedWriteHalf,
    mut answers: mpsc::Receiver<Reply>,
    peer: SocketAddr,
    activity: Arc<Activity>,
) {
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
    while let Some(mut reply) = answers.recv().await {
        while let Reply::Later { correlation_id, version, task, charge } = reply {
            if !task.is_finished() && writer.flush().await.is_err() {
                return;
            }
            reply = match task.await {
                Ok(outcome) => reply_for(correlation_id, version, outcome),
                Err(error) => Reply::Close(format!("a request task failed: {error}")),
            };
            drop(charge);
        }
        match reply {
            Reply::Send(encoded, regions) => {
                if let Err(error) = write_chunks(&mut writer, encoded, regions).await {
                    tracing::debug!(%peer, "write failed: {error}");
                    return;
                }
            }
            Reply::Nothing | Reply::Later { .. } => {}
            Reply::SendThenClose(encoded, reason) => {
                let _ = write_chunks(&mut writer, encoded, Vec::new()).await;
                tracing::info!(%peer, "closing connection: {reason}");
                break;
            }
            Reply::Close(reason) => {
                tracing::info!(%peer, "closing connection: {reason}");
                break;
            }
        }
        if answers.is_empty() && writer.flush().await.is_err() {
            return;
        }
        activity.touch();
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

/// The read buffer's free space, at least, before each read from the socket: small
/// pipelined requests then arrive several per read, and each frame is split off the
/// buffer without a copy.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Reads frames off the socket under the budgets and hands them to the connection.
struct FrameReader {
    read_half: OwnedReadHalf,
    frames: mpsc::Sender<Frame>,
    request_bytes_max: i32,
    budget: Arc<RequestBudget>,
    read_ahead: Arc<Semaphore>,
    activity: Arc<Activity>,
    idle_max: Option<Duration>,
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    peer: SocketAddr,
}

/// Why the reader stopped reading.
enum ReadEnd {
    /// The peer closed, the socket failed, or the connection stopped taking frames.
    Closed,
    Idle(Duration),
}

impl FrameReader {
    async fn run(mut self) {
        let peer = self.peer;
        if let Err(ReadEnd::Idle(idle)) = self.read_frames().await {
            tracing::debug!(%peer, "closing connection: idle for {} ms (connections.max.idle.ms)", idle.as_millis());
        }
    }

    async fn read_frames(&mut self) -> Result<(), ReadEnd> {
        let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
        // The charge of the frame at the front of the buffer, taken once its size is known.
        let mut charge: Option<(Charge, OwnedSemaphorePermit)> = None;
        loop {
            while let Some(prefix) = buffer.get(..4) {
                let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                let request_bytes_max = self.request_bytes_max;
                if size < 0 || size > request_bytes_max {
                    tracing::warn!(
                        peer = %self.peer,
                        "closing connection: request size {size} is outside 0..={request_bytes_max} (socket.request.max.bytes)"
                    );
                    return Ok(());
                }
                let size = size as usize;
                let (frame_charge, queued) = match charge.take() {
                    Some(charge) => charge,
                    None => self.charge(size).await?,
                };
                let frame_end = 4 + size;
                if buffer.len() < frame_end && size > READ_BUFFER_BYTES {
                    // A large frame gets a buffer of its own, exactly its size and allocated
                    // only now that the size passed the check and the budget holds it, so
                    // that nothing else shares it and a produce can stamp its batches in
                    // place without a copy.
                    buffer.advance(4);
                    let mut body = BytesMut::with_capacity(size);
                    body.extend_from_slice(&buffer);
                    buffer.clear();
                    while body.len() < body.capacity() {
                        self.read_some(&mut body).await?;
                    }
                    self.send(Frame { body: body.freeze(), charge: frame_charge, queued }).await?;
                    continue;
                }
                if buffer.len() < frame_end {
                    buffer.reserve(frame_end - buffer.len());
                    charge = Some((frame_charge, queued));
                    break;
                }
                buffer.advance(4);
                let body = buffer.split_to(size).freeze();
                self.send(Frame { body, charge: frame_charge, queued }).await?;
            }
            if buffer.capacity() - buffer.len() < READ_BUFFER_BYTES / 4 {
                buffer.reserve(READ_BUFFER_BYTES);
            }
            self.read_some(&mut buffer).await?;
        }
    }

    /// Takes a frame's share of the budgets, waiting while they are spent: first this
    /// connection's read-ahead (a large frame waits for the requests before it), then a
    /// place among the queued requests, then the bytes.
    async fn charge(&self, size: usize) -> Result<(Charge, OwnedSemaphorePermit), ReadEnd> {
        if size as u64 > self.budget.bytes_max {
            // Refused configurations keep this from happening (a request of
            // socket.request.max.bytes always fits); never wait for what cannot come.
            tracing::warn!(
                peer = %self.peer,
                "closing connection: a {size}-byte request exceeds the {}-byte budget of queued requests (queued.max.request.bytes)",
                self.budget.bytes_max
            );
            return Err(ReadEnd::Closed);
        }
        let read_ahead_bytes = u32::try_from(size.min(READ_AHEAD_BYTES_MAX)).map_err(|_| ReadEnd::Closed)?;
        let read_ahead =
            Arc::clone(&self.read_ahead).acquire_many_owned(read_ahead_bytes).await.map_err(|_| ReadEnd::Closed)?;
        let queued = Arc::clone(&self.budget.queued).acquire_owned().await.map_err(|_| ReadEnd::Closed)?;
        let bytes = u32::try_from(size).map_err(|_| ReadEnd::Closed)?;
        let bytes = Arc::clone(&self.budget.bytes).acquire_many_owned(bytes).await.map_err(|_| ReadEnd::Closed)?;
        Ok((Charge { _bytes: bytes, _read_ahead: read_ahead }, queued))
    }

    async fn send(&self, frame: Frame) -> Result<(), ReadEnd> {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.frames.send(frame).await.map_err(|_| ReadEnd::Closed)
    }

    /// Reads what the socket has into `buffer`. The idle timeout runs only here, while
    /// waiting for the peer, on one timer that is re-armed only when it fires, so that
    /// a busy connection costs no timer work per read.
    async fn read_some(&mut self, buffer: &mut BytesMut) -> Result<(), ReadEnd> {
        let read = match (self.idle_max, self.idle_timer.as_mut()) {
            (Some(idle_max), Some(timer)) => loop {
                tokio::select! {
                    biased;
                    read = self.read_half.read_buf(buffer) => break read,
                    () = timer.as_mut() => {
                        let wait = match self.activity.idle_for() {
                            Some(idle) if idle >= idle_max => return Err(ReadEnd::Idle(idle)),
                            Some(idle) => idle_max - idle,
                            None => idle_max,
                        };
                        timer.as_mut().reset(tokio::time::Instant::now() + wait.min(IDLE_CHECK_MAX));
                    }
                }
            },
            _ => self.read_half.read_buf(buffer).await,
        };
        match read {
            Ok(0) | Err(_) => Err(ReadEnd::Closed),
            Ok(_) => {
                self.activity.touch();
                Ok(())
            }
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

async fn handle_frame(broker: &Arc<Broker>, frame: Bytes, connection: &mut Arc<ConnectionContext>) -> Reply {
    let controller_listener = broker.static_config().controller_listener_names.contains(&connection.listener_name);
    if controller_listener && gregor_quorum::wire::is_raft_frame(&frame) {
        return match &broker.controller.quorum {
            Some(quorum) => match quorum.receive(frame) {
                Ok(()) => Reply::Nothing,
                Err(refusal) => {
                    let mut encoded = WriteBuf::new();
                    encoded.put_shared(&refusal);
                    Reply::SendThenClose(encoded, "a Raft frame from another cluster".into())
                }
            },
            None => Reply::Close("Raft messages to a node that is not a voter".into()),
        };
    }
    if controller_listener && gregor_quorum::wire::is_metadata_fetch(&frame) {
        let Some(quorum) = broker.controller.quorum.clone() else {
            return Reply::Close("a metadata fetch to a node that is not a voter".into());
        };
        let task = tokio::spawn(async move {
            match quorum.serve_fetch(frame).await {
                Ok(answer) => {
                    let mut encoded = WriteBuf::new();
                    encoded.put_shared(&answer);
                    Outcome::RespondEncoded(encoded)
                }
                Err(error) => Outcome::Close(format!("metadata fetch: {error}")),
            }
        });
        return Reply::Later { correlation_id: 0, version: 0, task, charge: None };
    }
    let prefix = match peek_request_prefix(&frame) {
        Ok(prefix) => prefix,
        Err(error) => return Reply::Close(format!("unreadable request header: {error}")),
    };
    let Some(api_key) = ApiKey::from_i16(prefix.api_key) else {
        return Reply::Close(format!("unknown API key {}", prefix.api_key));
    };
    if !is_supported_on(controller_listener, api_key, prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            // A client newer than us learns our range from this answer and retries.
            return encode(prefix.correlation_id, 0, ResponseBody::ApiVersions(unsupported_api_versions()), Vec::new());
        }
        return Reply::Close(format!("{} v{} is not supported", api_key.name(), prefix.api_version));
    }
    // A controller request reaching a node that is not the active controller goes
    // to the one that is, in an Envelope, as Kafka's brokers forward it.
    if !controller_listener
        && crate::dispatch::is_forwarded_to_controller(api_key)
        && broker.controller.is_clustered()
        && !broker.controller.leadership().may_decide
    {
        let broker = Arc::clone(broker);
        let client = connection.client_address;
        let task = tokio::spawn(async move {
            match broker.controller_client.forward(&broker, frame, client).await {
                Ok(response) => {
                    let mut encoded = WriteBuf::with_capacity(4);
                    let size = i32::try_from(response.len()).unwrap_or(i32::MAX);
                    encoded.put_slice(&size.to_be_bytes());
                    encoded.put_shared(&response);
                    Outcome::RespondEncoded(encoded)
                }
                Err(error) => Outcome::Close(format!("cannot forward the request to the active controller: {error}")),
            }
        });
        return Reply::Later { correlation_id: prefix.correlation_id, version: prefix.api_version, task, charge: None };
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
    remember_client_software(connection, &request);
    reply_for(prefix.correlation_id, prefix.api_version, dispatch(broker, request, connection).await)
}

/// Keeps the software an ApiVersions request (v3+) names, as Kafka registers it for
/// the connection; an invalid name is refused by the handler and not kept.
fn remember_client_software(connection: &mut Arc<ConnectionContext>, request: &DecodedRequest) {
    let RequestBody::ApiVersions(body) = &request.body else { return };
    if request.header.request_api_version < 3
        || !crate::handlers::api_versions::is_valid_software_field(&body.client_software_name)
        || !crate::handlers::api_versions::is_valid_software_field(&body.client_software_version)
    {
        return;
    }
    // Requests still in flight keep the context they started with.
    Arc::make_mut(connection).client_software =
        Some(ClientSoftware { name: body.client_software_name.clone(), version: body.client_software_version.clone() });
}

fn reply_for(correlation_id: i32, version: i16, outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Respond(response) => encode(correlation_id, version, response, Vec::new()),
        Outcome::RespondWithRegions(response, regions) => encode(correlation_id, version, response, regions),
        Outcome::NoResponse => Reply::Nothing,
        Outcome::RespondEncoded(encoded) => Reply::Send(encoded, Vec::new()),
        Outcome::Close(reason) => Reply::Close(reason),
        Outcome::Deferred(task) => Reply::Later { correlation_id, version, task, charge: None },
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

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
    use gregor_protocol::messages::RequestHeader;

    fn api_versions(version: i16, name: &str, software_version: &str) -> DecodedRequest {
        DecodedRequest {
            header: RequestHeader { request_api_key: 18, request_api_version: version, ..RequestHeader::default() },
            api_key: ApiKey::ApiVersions,
            body: RequestBody::ApiVersions(ApiVersionsRequest {
                client_software_name: name.into(),
                client_software_version: software_version.into(),
                ..ApiVersionsRequest::default()
            }),
        }
    }

    #[test]
    fn the_connection_keeps_the_software_a_valid_api_versions_names() {
        let mut connection = Arc::new(ConnectionContext::new("PLAINTEXT", "PLAINTEXT", ([127, 0, 0, 1], 9).into()));
        let in_flight = Arc::clone(&connection);
        remember_client_software(&mut connection, &api_versions(2, "old", "1.0"));
        assert_eq!(connection.client_software, None, "v2 carries no software");
        remember_client_software(&mut connection, &api_versions(3, "bad name!", "1.0"));
        assert_eq!(connection.client_software, None, "an invalid name is refused, not kept");
        remember_client_software(&mut connection, &api_versions(3, "librdkafka", "2.3.0"));
        let expected = ClientSoftware { name: "librdkafka".into(), version: "2.3.0".into() };
        assert_eq!(connection.client_software, Some(expected));
        assert_eq!(in_flight.client_software, None, "requests in flight keep their context");
        assert_eq!(connection.principal, crate::request_context::ANONYMOUS);
    }
}
