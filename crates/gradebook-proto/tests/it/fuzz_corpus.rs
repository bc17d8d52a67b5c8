//! Replays the fuzzers' corpora (`fuzz/corpus/<target>/`) through the
//! targets' bodies, so every input the fuzzers kept is checked again by
//! `cargo test` on stable.

use std::path::Path;

use gradebook_proto::fuzzing::{self, replay_corpus};

/// The corpora, beside the workspace's crates.
fn corpus() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus"))
}

#[test]
fn json_lines() {
    replay_corpus(corpus(), "json_lines", fuzzing::json_lines);
}

#[test]
fn msgpack_frames() {
    replay_corpus(corpus(), "msgpack_frames", fuzzing::msgpack_frames);
}
