//! Replays the `udp_datagram` fuzzer's corpus (`fuzz/corpus/udp_datagram/`)
//! through the target's body, so every input the fuzzer kept is checked
//! again by `cargo test` on stable.

use std::path::Path;

use gradebook_proto::fuzzing::replay_corpus;

#[test]
fn udp_datagram() {
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus"));
    replay_corpus(
        corpus,
        "udp_datagram",
        gradebook_server::fuzzing::udp_datagram,
    );
}
