//! Replays the file import fuzzer's corpus (`fuzz/corpus/import_file/`)
//! through the target's body, so every input it kept is checked again by
//! `cargo test` on stable.

use std::path::Path;

use gradebook_core::fuzzing::{import_file, replay_corpus};

#[test]
fn import_file_corpus() {
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus"));
    replay_corpus(corpus, "import_file", import_file);
}
