//! A TCP byte stream in length-prefixed MessagePack: see
//! `gradebook_proto::fuzzing::msgpack_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gradebook_proto::fuzzing::msgpack_frames(data));
