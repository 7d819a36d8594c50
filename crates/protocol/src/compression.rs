//! Compression codecs of record batches and legacy message sets.
//!
//! Decompression is always bounded: the caller names the largest output it
//! will accept and no codec allocates or produces more than that, so a few
//! hundred bytes of crafted input cannot make the broker allocate gigabytes.

use std::io::{Read, Write};

/// The codec in the low three bits of batch and message attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// Why data could not be compressed or decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    #[error("unknown compression codec id {id}")]
    UnknownCodec { id: u8 },
    #[error("decompressed output exceeds the limit of {bytes_max} bytes")]
    OutputTooLarge { bytes_max: usize },
    #[error("corrupt {codec:?} data: {detail}")]
    Corrupt { codec: Compression, detail: String },
    #[error("{codec:?} compression failed: {detail}")]
    CompressFailed { codec: Compression, detail: String },
}

/// The low three bits of the attributes field hold the codec in every magic.
const CODEC_MASK: i16 = 0x07;

impl Compression {
    /// The codec named by the low bits of a batch or message attributes field.
    pub fn from_attributes(attributes: i16) -> Result<Self, CompressionError> {
        // The mask leaves a value in 0..=7, so the narrowing cannot lose bits.
        Self::from_id((attributes & CODEC_MASK) as u8)
    }

    pub fn from_id(id: u8) -> Result<Self, CompressionError> {
        match id {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            _ => Err(CompressionError::UnknownCodec { id }),
        }
    }

    pub fn id(self) -> u8 {
        self as u8
    }
}

/// The header the xerial snappy-java stream writes, which the Java client uses
/// for Kafka's snappy codec: magic, then big-endian version and compatible
/// version.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_VERSION: i32 = 1;
const XERIAL_COMPATIBLE_VERSION: i32 = 1;
const XERIAL_HEADER_BYTES: usize = XERIAL_MAGIC.len() + 8;
/// snappy-java's default block size; matching it keeps our output shaped like
/// what Java clients produce and bounds the per-block working memory.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Kafka's default zstd level.
const ZSTD_LEVEL: i32 = 3;
/// zstd decoders allocate the window a frame header declares before any
/// output exists, so the window is capped. Producers stream without a pledged
/// size and declare the full window of their level (2^21 at the default level,
/// 2^23 up to level 19); windows above the output limit are refused beyond
/// that floor.
const ZSTD_WINDOW_LOG_FLOOR: u32 = 23;
/// zstd's own default ceiling for decoders.
const ZSTD_WINDOW_LOG_CEILING: u32 = 27;

/// Streaming decoders are read in chunks of this size so output growth can be
/// checked against the limit before it happens.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Compresses `input` with `codec` in the format Kafka's Java client writes.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let failed = |error: std::io::Error| CompressionError::CompressFailed { codec, detail: error.to_string() };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(input).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        Compression::Snappy => compress_xerial_snappy(input),
        Compression::Lz4 => {
            // Java's reader only understands independent blocks without content
            // size, so the frame is pinned to what the Java writer emits.
            let frame_info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false)
                .content_size(None);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(frame_info, Vec::new());
            encoder.write_all(input).map_err(failed)?;
            encoder.finish().map_err(|error| CompressionError::CompressFailed { codec, detail: error.to_string() })
        }
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL).map_err(failed),
    }
}

fn compress_xerial_snappy(input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    let mut output = Vec::with_capacity(XERIAL_HEADER_BYTES + snap::raw::max_compress_len(input.len()));
    output.extend_from_slice(&XERIAL_MAGIC);
    output.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    output.extend_from_slice(&XERIAL_COMPATIBLE_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK_BYTES)];
    for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
        let block_bytes = encoder
            .compress(chunk, &mut block)
            .map_err(|error| CompressionError::CompressFailed { codec, detail: error.to_string() })?;
        let length = i32::try_from(block_bytes).map_err(|_| CompressionError::CompressFailed {
            codec,
            detail: format!("block of {block_bytes} bytes does not fit an i32 length"),
        })?;
        output.extend_from_slice(&length.to_be_bytes());
        output.extend_from_slice(block.get(..block_bytes).unwrap_or_default());
    }
    Ok(output)
}

/// Decompresses `input`, refusing to produce more than `output_bytes_max`
/// bytes. Snappy input may be xerial-framed (Java clients) or a raw snappy
/// block (some other clients); the framing is detected from the magic.
pub fn decompress(codec: Compression, input: &[u8], output_bytes_max: usize) -> Result<Vec<u8>, CompressionError> {
    let corrupt =
        |error: std::io::Error| match error.get_ref().and_then(|inner| inner.downcast_ref::<CompressionError>()) {
            Some(inner) => inner.clone(),
            None => CompressionError::Corrupt { codec, detail: error.to_string() },
        };
    match codec {
        Compression::None => {
            if input.len() > output_bytes_max {
                return Err(CompressionError::OutputTooLarge { bytes_max: output_bytes_max });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Concatenated gzip members are legal and Java's reader accepts them.
            read_bounded(flate2::read::MultiGzDecoder::new(input), output_bytes_max).map_err(corrupt)
        }
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial_snappy(input, output_bytes_max)
            } else {
                let mut output = Vec::new();
                append_raw_snappy(input, &mut output, output_bytes_max)?;
                Ok(output)
            }
        }
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), output_bytes_max).map_err(corrupt),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(input).map_err(corrupt)?;
            decoder.window_log_max(zstd_window_log_max(output_bytes_max)).map_err(corrupt)?;
            read_bounded(decoder, output_bytes_max).map_err(corrupt)
        }
    }
}

fn zstd_window_log_max(output_bytes_max: usize) -> u32 {
    let needed_log = usize::BITS - output_bytes_max.saturating_sub(1).leading_zeros();
    needed_log.clamp(ZSTD_WINDOW_LOG_FLOOR, ZSTD_WINDOW_LOG_CEILING)
}

fn decompress_xerial_snappy(input: &[u8], output_bytes_max: usize) -> Result<Vec<u8>, CompressionError> {
    let corrupt = |detail: String| CompressionError::Corrupt { codec: Compression::Snappy, detail };
    let mut output = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        // snappy-java concatenates whole streams when appending, so a header
        // may appear again between blocks.
        if rest.starts_with(&XERIAL_MAGIC) {
            rest = rest.get(XERIAL_HEADER_BYTES..).ok_or_else(|| corrupt("truncated xerial header".to_owned()))?;
            continue;
        }
        let (length_bytes, after_length) =
            rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated xerial block length".to_owned()))?;
        let length = i32::from_be_bytes(*length_bytes);
        let block_bytes =
            usize::try_from(length).map_err(|_| corrupt(format!("negative xerial block length {length}")))?;
        if block_bytes > after_length.len() {
            return Err(corrupt(format!("xerial block of {block_bytes} bytes but {} remain", after_length.len())));
        }
        let (block, after_block) = after_length.split_at(block_bytes);
        append_raw_snappy(block, &mut output, output_bytes_max)?;
        rest = after_block;
    }
    Ok(output)
}

/// Decodes one raw snappy block onto the end of `output`. The block's header
/// declares its decompressed length, which is checked against the limit
/// before any memory is reserved.
fn append_raw_snappy(block: &[u8], output: &mut Vec<u8>, output_bytes_max: usize) -> Result<(), CompressionError> {
    let corrupt =
        |error: snap::Error| CompressionError::Corrupt { codec: Compression::Snappy, detail: error.to_string() };
    let declared_bytes = snap::raw::decompress_len(block).map_err(corrupt)?;
    let start = output.len();
    if declared_bytes > output_bytes_max.saturating_sub(start) {
        return Err(CompressionError::OutputTooLarge { bytes_max: output_bytes_max });
    }
    output.resize(start + declared_bytes, 0);
    let target = output.get_mut(start..).unwrap_or_default();
    let written_bytes = snap::raw::Decoder::new().decompress(block, target).map_err(corrupt)?;
    output.truncate(start + written_bytes);
    Ok(())
}

/// Reads a streaming decoder to its end while keeping both the produced bytes
/// and the reserved capacity within `output_bytes_max`.
fn read_bounded(mut reader: impl Read, output_bytes_max: usize) -> std::io::Result<Vec<u8>> {
    let mut output = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let read_bytes = match reader.read(&mut chunk) {
            Ok(0) => return Ok(output),
            Ok(read_bytes) => read_bytes,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let room_bytes = output_bytes_max - output.len();
        if read_bytes > room_bytes {
            return Err(std::io::Error::other(CompressionError::OutputTooLarge { bytes_max: output_bytes_max }));
        }
        if output.capacity() - output.len() < read_bytes {
            // Doubling as Vec would could reserve up to twice the limit.
            let target_bytes = (output.capacity() * 2).max(output.len() + read_bytes).min(output_bytes_max);
            output.reserve_exact(target_bytes - output.len());
        }
        output.extend_from_slice(chunk.get(..read_bytes).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests;
