#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gregor_protocol_fuzz::quorum_frames(data));
