//! A file given to `gradebook import`: see `gradebook_core::fuzzing::import_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gradebook_core::fuzzing::import_file(data));
