//! The protocol's integration tests, in one binary.

mod fuzz_corpus;
mod roundtrip;
