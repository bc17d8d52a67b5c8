//! A TCP byte stream in JSON Lines: see `gradebook_proto::fuzzing::json_lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gradebook_proto::fuzzing::json_lines(data));
