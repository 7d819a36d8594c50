//! Record data sent from segment files by the kernel (sendfile), never read into
//! the broker's memory: the fetch path's hot loop is then index lookups and a
//! system call, with no copy or zeroing of the data in user space.
//!
//! A fetch response is still one encoded message: each partition's records field
//! holds a placeholder of the region's length, a slice of a static zero buffer that
//! is never read, so lengths and sizes come out right. The connection's writer
//! recognizes placeholder chunks by their address and sends the regions, in order,
//! in their place. Placeholders are at least the encoder's shared-chunk size, so
//! each one stays a chunk of its own.

use bytes::Bytes;
use gregor_protocol::codec::SHARED_CHUNK_BYTES_MIN;
use gregor_storage::FileRegion;
use std::io;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The largest region sent from its file; a larger one (a batch over 16 MiB, or a
/// partition_max_bytes above it) is read into memory instead.
pub const REGION_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Zeroed, so it lives in .bss and costs no memory while untouched.
static PLACEHOLDER: [u8; REGION_BYTES_MAX] = [0; REGION_BYTES_MAX];

/// Whether `region` is sent from its file: the file supports it and its length
/// fits a placeholder.
pub fn sendable(region: &FileRegion) -> bool {
    region.os_file().is_some() && (SHARED_CHUNK_BYTES_MIN..=REGION_BYTES_MAX).contains(&region.len_bytes())
}

/// The stand-in for `region` in the encoded response.
pub fn placeholder(region: &FileRegion) -> Option<Bytes> {
    sendable(region).then(|| PLACEHOLDER.get(..region.len_bytes()).map(Bytes::from_static)).flatten()
}

/// Whether an encoded chunk is a placeholder.
pub fn is_placeholder(chunk: &Bytes) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = chunk.as_ptr() as usize;
    !chunk.is_empty() && at >= start && at < start + REGION_BYTES_MAX
}

/// Sends `region` on `stream` with sendfile, waiting whenever the socket is full.
/// Whatever was buffered for the stream must have been flushed first.
pub async fn send_region(stream: &TcpStream, region: &FileRegion) -> io::Result<()> {
    let Some(file) = region.os_file() else {
        return Err(io::Error::other("a fetched region without an operating system file"));
    };
    let mut offset = region.position();
    let end = offset + region.len_bytes() as u64;
    while offset < end {
        stream.writable().await?;
        let remaining = usize::try_from(end - offset).unwrap_or(usize::MAX);
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut offset), remaining).map_err(io::Error::from)
        });
        match sent {
            // The file ended inside the region: the response cannot be completed.
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a segment file ended inside a region")),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
