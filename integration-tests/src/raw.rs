//! A plain blocking TCP connection speaking Kafka frames through `gregor-protocol`.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use gregor_protocol::frame::{decode_response, encode_request_frame};
use gregor_protocol::messages::{RequestHeader, ResponseHeader};
use gregor_protocol::{ApiKey, RequestBody, ResponseBody};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "gregor-itest-raw";

/// What reading a frame found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A whole frame, without its size prefix.
    Frame(Bytes),
    /// The broker closed (or reset) the connection.
    Closed,
    /// Nothing complete arrived before the timeout.
    TimedOut,
}

pub struct RawConn {
    stream: TcpStream,
}

impl RawConn {
    pub fn connect(bootstrap: &str) -> Result<RawConn> {
        let stream = TcpStream::connect(bootstrap).with_context(|| format!("connecting to {bootstrap}"))?;
        stream.set_nodelay(true)?;
        Ok(RawConn { stream })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes. A broker that already closed the connection may make
    /// this fail with a reset or broken pipe, which the caller may accept.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The encoded frame (with size prefix) of `body` at `version`.
    pub fn frame(body: impl Into<RequestBody>, version: i16, correlation_id: i32) -> Result<Vec<u8>> {
        let body = body.into();
        let header = RequestHeader {
            request_api_key: body.api_key().key(),
            request_api_version: version,
            correlation_id,
            client_id: Some(CLIENT_ID.into()),
            ..Default::default()
        };
        Ok(encode_request_frame(&header, &body)
            .with_context(|| format!("encoding {:?} v{version}", body.api_key()))?
            .to_vec())
    }

    /// Sends one request without reading anything.
    pub fn send(&mut self, body: impl Into<RequestBody>, version: i16, correlation_id: i32) -> Result<()> {
        let frame = Self::frame(body, version, correlation_id)?;
        self.write_raw(&frame).context("writing a request")
    }

    /// Reads one frame, waiting at most `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> Result<ReadOutcome> {
        let deadline = Instant::now() + timeout;
        let mut size = [0u8; 4];
        match self.read_exact_until(&mut size, deadline)? {
            Some(ReadOutcome::Frame(_)) => {}
            Some(other) => return Ok(other),
            None => unreachable!(),
        }
        let len = i32::from_be_bytes(size);
        if !(0..=256 * 1024 * 1024).contains(&len) {
            bail!("response frame with size {len}");
        }
        let mut body = vec![0u8; len as usize];
        match self.read_exact_until(&mut body, deadline)? {
            Some(ReadOutcome::Frame(_)) => Ok(ReadOutcome::Frame(Bytes::from(body))),
            Some(ReadOutcome::Closed) => bail!("connection closed in the middle of a {len}-byte response"),
            Some(ReadOutcome::TimedOut) => bail!("timed out in the middle of a {len}-byte response"),
            None => unreachable!(),
        }
    }

    /// Fills `buf`; `Frame(empty)` stands for "filled".
    fn read_exact_until(&mut self, buf: &mut [u8], deadline: Instant) -> Result<Option<ReadOutcome>> {
        let mut filled = 0;
        while filled < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Some(ReadOutcome::TimedOut));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    return if filled == 0 {
                        Ok(Some(ReadOutcome::Closed))
                    } else {
                        bail!("connection closed after {filled} of {} bytes", buf.len())
                    }
                }
                Ok(n) => filled += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Some(ReadOutcome::TimedOut))
                }
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                    return Ok(Some(ReadOutcome::Closed))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading from the broker"),
            }
        }
        Ok(Some(ReadOutcome::Frame(Bytes::new())))
    }

    /// Reads one response frame and decodes it as the answer to `api_key` at `version`.
    pub fn read_response(
        &mut self,
        api_key: ApiKey,
        version: i16,
        timeout: Duration,
    ) -> Result<(ResponseHeader, ResponseBody)> {
        match self.read_frame(timeout)? {
            ReadOutcome::Frame(frame) => decode_response(frame.clone(), api_key, version).with_context(|| {
                format!(
                    "decoding a {api_key:?} v{version} response from {} bytes: {:02x?}",
                    frame.len(),
                    &frame[..frame.len().min(64)]
                )
            }),
            ReadOutcome::Closed => bail!("connection closed while waiting for a {api_key:?} v{version} response"),
            ReadOutcome::TimedOut => bail!("no {api_key:?} v{version} response within {timeout:?}"),
        }
    }

    /// Sends one request and reads its response, checking the correlation id.
    pub fn round_trip(
        &mut self,
        body: impl Into<RequestBody>,
        version: i16,
        correlation_id: i32,
    ) -> Result<ResponseBody> {
        let body = body.into();
        let api_key = body.api_key();
        self.send(body, version, correlation_id)?;
        let (header, response) = self.read_response(api_key, version, Duration::from_secs(10))?;
        if header.correlation_id != correlation_id {
            bail!("{api_key:?} response has correlation id {}, expected {correlation_id}", header.correlation_id);
        }
        Ok(response)
    }

    /// Waits until the broker closes the connection; fails on data or timeout.
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<()> {
        match self.read_frame(timeout) {
            Ok(ReadOutcome::Closed) => Ok(()),
            Ok(ReadOutcome::TimedOut) => bail!("connection still open after {timeout:?}"),
            Ok(ReadOutcome::Frame(frame)) => bail!("expected a closed connection, got a {}-byte frame", frame.len()),
            // A partial frame followed by a close also counts as closed data-wise,
            // but it is a broker bug worth reporting.
            Err(e) => Err(e),
        }
    }
}
