use super::*;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const ALL_CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
const COMPRESSED_CODECS: [Compression; 4] =
    [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
const LIMIT_BYTES: usize = 1024 * 1024;
/// Large enough that decoding it whole would be plainly visible in time and
/// memory, small enough to build quickly in a debug test binary.
const BOMB_BYTES: usize = 256 * 1024 * 1024;
const BOMB_DECODE_TIME_MAX: Duration = Duration::from_secs(2);

fn compressible_text(bytes: usize) -> Vec<u8> {
    b"gregor speaks kafka; "
        .iter()
        .cycle()
        .take(bytes)
        .enumerate()
        .map(|(index, byte)| if index % 977 == 0 { b'#' } else { *byte })
        .collect()
}

#[test]
fn ids_and_attributes_map_to_codecs() {
    for codec in ALL_CODECS {
        assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
        // Bits above the codec field must not disturb it.
        let attributes = 0x7ff8 | i16::from(codec.id());
        assert_eq!(Compression::from_attributes(attributes).unwrap(), codec);
    }
    for id in 5..=7u8 {
        assert_eq!(Compression::from_id(id), Err(CompressionError::UnknownCodec { id }));
        assert!(Compression::from_attributes(i16::from(id)).is_err());
    }
}

#[test]
fn every_codec_round_trips_empty_small_and_multi_block_inputs() {
    for codec in ALL_CODECS {
        for input in [Vec::new(), b"x".to_vec(), compressible_text(300_000)] {
            let compressed = compress(codec, &input).unwrap();
            let output = decompress(codec, &compressed, LIMIT_BYTES).unwrap();
            assert_eq!(output, input, "{codec:?}");
        }
    }
}

#[test]
fn output_exactly_at_the_limit_is_accepted_and_one_over_is_refused() {
    let input = compressible_text(100_000);
    for codec in ALL_CODECS {
        let compressed = compress(codec, &input).unwrap();
        assert_eq!(decompress(codec, &compressed, input.len()).unwrap(), input);
        assert_eq!(
            decompress(codec, &compressed, input.len() - 1),
            Err(CompressionError::OutputTooLarge { bytes_max: input.len() - 1 }),
            "{codec:?}"
        );
    }
}

#[test]
fn snappy_writes_xerial_framing_with_several_blocks() {
    let input = compressible_text(100_000);
    let compressed = compress(Compression::Snappy, &input).unwrap();
    assert_eq!(compressed[..8], XERIAL_MAGIC);
    assert_eq!(compressed[8..12], 1i32.to_be_bytes());
    assert_eq!(compressed[12..16], 1i32.to_be_bytes());
    let mut rest = &compressed[16..];
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let length = usize::try_from(i32::from_be_bytes(rest[..4].try_into().unwrap())).unwrap();
        blocks.push(snap::raw::Decoder::new().decompress_vec(&rest[4..4 + length]).unwrap());
        rest = &rest[4 + length..];
    }
    assert_eq!(blocks.len(), 4);
    assert!(blocks.iter().all(|block| block.len() <= XERIAL_BLOCK_BYTES));
    assert_eq!(blocks.concat(), input);
}

#[test]
fn hand_framed_xerial_with_repeated_header_decodes() {
    let parts: [&[u8]; 3] = [b"first block, ", b"second block, ", b"third after a new header"];
    let mut header = XERIAL_MAGIC.to_vec();
    header.extend_from_slice(&1i32.to_be_bytes());
    header.extend_from_slice(&1i32.to_be_bytes());
    let mut framed = header.clone();
    for (index, part) in parts.iter().enumerate() {
        if index == 2 {
            framed.extend_from_slice(&header);
        }
        let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
        framed.extend_from_slice(&i32::try_from(block.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&block);
    }
    assert_eq!(decompress(Compression::Snappy, &framed, LIMIT_BYTES).unwrap(), parts.concat());
}

#[test]
fn raw_snappy_block_decodes() {
    let input = compressible_text(50_000);
    let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
    assert_eq!(decompress(Compression::Snappy, &raw, LIMIT_BYTES).unwrap(), input);
}

#[test]
fn truncated_xerial_is_corrupt() {
    let compressed = compress(Compression::Snappy, &compressible_text(10_000)).unwrap();
    for cut in [10, 17, 19, compressed.len() - 1] {
        assert!(matches!(
            decompress(Compression::Snappy, &compressed[..cut], LIMIT_BYTES),
            Err(CompressionError::Corrupt { codec: Compression::Snappy, .. })
        ));
    }
}

#[test]
fn lz4_writes_the_frame_java_clients_read() {
    let compressed = compress(Compression::Lz4, b"hello").unwrap();
    assert_eq!(compressed[..4], 0x184D_2204u32.to_le_bytes());
    // FLG: version 01, independent blocks, no checksums, no content size.
    assert_eq!(compressed[4], 0b0110_0000);
    // BD: 64 KiB maximum block size.
    assert_eq!(compressed[5], 0b0100_0000);
}

#[test]
fn gzip_concatenated_members_decode() {
    let mut joined = compress(Compression::Gzip, b"one ").unwrap();
    joined.extend(compress(Compression::Gzip, b"two").unwrap());
    assert_eq!(decompress(Compression::Gzip, &joined, LIMIT_BYTES).unwrap(), b"one two");
}

fn zeros_bomb(codec: Compression) -> Vec<u8> {
    let zeros = vec![0u8; 1024 * 1024];
    let chunks = BOMB_BYTES / zeros.len();
    match codec {
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            for _ in 0..chunks {
                encoder.write_all(&zeros).unwrap();
            }
            encoder.finish().unwrap()
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            for _ in 0..chunks {
                encoder.write_all(&zeros).unwrap();
            }
            encoder.finish().unwrap()
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            for _ in 0..chunks {
                encoder.write_all(&zeros).unwrap();
            }
            encoder.finish().unwrap()
        }
        Compression::Snappy => {
            // One compressed block of zeros repeated: each declares 32 KiB.
            let block = snap::raw::Encoder::new().compress_vec(&zeros[..XERIAL_BLOCK_BYTES]).unwrap();
            let mut framed = XERIAL_MAGIC.to_vec();
            framed.extend_from_slice(&1i32.to_be_bytes());
            framed.extend_from_slice(&1i32.to_be_bytes());
            for _ in 0..BOMB_BYTES / XERIAL_BLOCK_BYTES {
                framed.extend_from_slice(&i32::try_from(block.len()).unwrap().to_be_bytes());
                framed.extend_from_slice(&block);
            }
            framed
        }
        Compression::None => zeros,
    }
}

#[test]
fn compression_bombs_are_refused_cheaply() {
    for codec in COMPRESSED_CODECS {
        let bomb = zeros_bomb(codec);
        let started = Instant::now();
        assert_eq!(
            decompress(codec, &bomb, LIMIT_BYTES),
            Err(CompressionError::OutputTooLarge { bytes_max: LIMIT_BYTES }),
            "{codec:?}"
        );
        assert!(started.elapsed() < BOMB_DECODE_TIME_MAX, "{codec:?} took {:?}", started.elapsed());
    }
}

#[test]
fn forged_raw_snappy_length_is_refused_before_allocating() {
    // A varint declaring u32::MAX decompressed bytes, followed by nothing.
    let forged = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert_eq!(
        decompress(Compression::Snappy, &forged, LIMIT_BYTES),
        Err(CompressionError::OutputTooLarge { bytes_max: LIMIT_BYTES })
    );
    let mut xerial = XERIAL_MAGIC.to_vec();
    xerial.extend_from_slice(&1i32.to_be_bytes());
    xerial.extend_from_slice(&1i32.to_be_bytes());
    xerial.extend_from_slice(&6i32.to_be_bytes());
    xerial.extend_from_slice(&forged);
    assert_eq!(
        decompress(Compression::Snappy, &xerial, LIMIT_BYTES),
        Err(CompressionError::OutputTooLarge { bytes_max: LIMIT_BYTES })
    );
}

#[test]
fn forged_zstd_window_is_refused() {
    // Frame header: magic, descriptor with no single-segment flag, window
    // descriptor declaring a 2^31 byte window.
    let forged = [0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 0x01, 0x00, 0x00];
    assert!(matches!(
        decompress(Compression::Zstd, &forged, LIMIT_BYTES),
        Err(CompressionError::Corrupt { codec: Compression::Zstd, .. })
    ));
}

#[test]
fn zstd_window_cap_follows_the_limit() {
    assert_eq!(zstd_window_log_max(0), ZSTD_WINDOW_LOG_FLOOR);
    assert_eq!(zstd_window_log_max(1 << 25), 25);
    assert_eq!(zstd_window_log_max((1 << 25) + 1), 26);
    assert_eq!(zstd_window_log_max(usize::MAX), ZSTD_WINDOW_LOG_CEILING);
}

fn codec_strategy() -> impl Strategy<Value = Compression> {
    prop::sample::select(ALL_CODECS.to_vec())
}

proptest! {
    #[test]
    fn arbitrary_input_round_trips(codec in codec_strategy(), input in prop::collection::vec(any::<u8>(), 0..4096)) {
        let compressed = compress(codec, &input).unwrap();
        prop_assert_eq!(decompress(codec, &compressed, input.len()).unwrap(), input);
    }

    #[test]
    fn garbage_never_panics(codec in codec_strategy(), garbage in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decompress(codec, &garbage, LIMIT_BYTES);
    }

    #[test]
    fn garbage_behind_valid_magic_never_panics(
        codec in codec_strategy(),
        garbage in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let magic: &[u8] = match codec {
            Compression::None => &[],
            Compression::Gzip => &[0x1f, 0x8b, 0x08],
            Compression::Snappy => &XERIAL_MAGIC,
            Compression::Lz4 => &[0x04, 0x22, 0x4d, 0x18],
            Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
        };
        let input = [magic, &garbage].concat();
        let _ = decompress(codec, &input, LIMIT_BYTES);
    }

    #[test]
    fn corrupted_compressed_data_never_panics(
        codec in codec_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut compressed = compress(codec, &compressible_text(5_000)).unwrap();
        for (index, byte) in flips {
            let position = index.index(compressed.len());
            compressed[position] ^= byte;
        }
        let _ = decompress(codec, &compressed, LIMIT_BYTES);
    }
}
