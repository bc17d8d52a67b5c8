//! One UDP datagram's payload: see `gradebook_server::fuzzing::udp_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gradebook_server::fuzzing::udp_datagram(data));
