//! The bodies of the fuzz targets that need only the protocol, and the
//! corpus replay that runs every saved input through them.
//!
//! Each target is one function taking arbitrary bytes; it panics when an
//! invariant breaks. The cargo-fuzz binaries in `fuzz/` (nightly) and the
//! replay tests in `tests/it/fuzz_corpus.rs` (stable, `cargo test`) both call
//! these functions, so what the fuzzer checked is exactly what the tests
//! check again. Not part of the crate's API.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::codec::write_frame;
use crate::{Command, Encoding, FrameCodec, FrameError, Request};

/// The frame limit the framing targets run under: small, so that inputs of
/// a few hundred bytes reach the over-long paths, yet large enough for the
/// requests of the protocol's transcripts.
pub const FUZZ_MAX_FRAME: usize = 256;

/// Sizes of the successive reads in the chunked pass: single bytes, sizes
/// around the limit and everything between, so a frame is cut at many
/// different places.
const READS: [usize; 12] = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 257, 610];

/// Target `json_lines`: a TCP byte stream as a connection starts it, in
/// JSON Lines.
pub fn json_lines(data: &[u8]) {
    stream(Encoding::Json, data);
}

/// Target `msgpack_frames`: a TCP byte stream after `hello` switched it to
/// length-prefixed MessagePack.
pub fn msgpack_frames(data: &[u8]) {
    stream(Encoding::Msgpack, data);
}

/// What cutting a stream gave: its frames, and whether it stopped on an
/// over-long message.
#[derive(Debug, PartialEq)]
struct Cut {
    frames: Vec<Vec<u8>>,
    too_large: bool,
}

/// Cuts `data` the way a connection does, twice (all of it in one read,
/// then in reads of many sizes), checks the limit at every step and that
/// both passes agree, and reads every frame as the server does.
fn stream(start: Encoding, data: &[u8]) {
    let whole = cut(start, &[data]);
    let mut reads = Vec::new();
    let mut rest = data;
    for size in READS.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (read, tail) = rest.split_at((*size).min(rest.len()));
        reads.push(read);
        rest = tail;
    }
    let chunked = cut(start, &reads);
    assert_eq!(
        whole, chunked,
        "the frames must not depend on how the bytes were read"
    );
}

/// Feeds `reads` one after the other to a codec starting in `start`, and
/// answers each frame as the server would: decode the request, parse its
/// command, switch encoding on `hello`.
fn cut(start: Encoding, reads: &[&[u8]]) -> Cut {
    let mut codec = FrameCodec::new(start, FUZZ_MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            let encoding = codec.encoding();
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(
                        frame.len() <= FUZZ_MAX_FRAME,
                        "a {}-byte frame over the {FUZZ_MAX_FRAME}-byte limit",
                        frame.len()
                    );
                    if encoding == Encoding::Json {
                        assert!(!frame.is_empty() && !frame.contains(&b'\n'));
                    }
                    if let Some(next) = answer(encoding, &frame) {
                        codec.set_encoding(next);
                    }
                    frames.push(frame.to_vec());
                }
                Ok(None) => {
                    // What waits for the rest of a message is at most one
                    // message and its framing: a JSON line without its
                    // "\r\n", or a MessagePack frame with its prefix.
                    let pending = match encoding {
                        Encoding::Json => FUZZ_MAX_FRAME + 2,
                        Encoding::Msgpack => FUZZ_MAX_FRAME + 3,
                    };
                    assert!(
                        buf.len() <= pending,
                        "{} bytes pending, over the {pending} allowed",
                        buf.len()
                    );
                    break;
                }
                Err(FrameError::TooLarge { max }) => {
                    assert_eq!(max, FUZZ_MAX_FRAME);
                    // The connection answers frame_too_large and closes.
                    return Cut {
                        frames,
                        too_large: true,
                    };
                }
                Err(FrameError::Io(e)) => panic!("no I/O here, yet: {e}"),
            }
        }
    }
    Cut {
        frames,
        too_large: false,
    }
}

/// Reads one frame as a request and parses its command, checking that what
/// decodes encodes back to the same value. Returns the encoding a `hello`
/// switches the connection to.
fn answer(encoding: Encoding, frame: &[u8]) -> Option<Encoding> {
    let Ok(mut request) = Request::decode(encoding, frame) else {
        return None;
    };
    request_round_trips(&request);
    let command = request.command().ok()?;
    command_round_trips(&command);
    match command {
        Command::Hello(args) => args.encoding.as_deref().and_then(Encoding::from_name),
        _ => None,
    }
}

/// A decoded request, framed again in either encoding, is cut and decoded
/// to the same request.
pub fn request_round_trips(request: &Request) {
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let mut buf = BytesMut::new();
        write_frame(encoding, request, &mut buf)
            .unwrap_or_else(|e| panic!("a decoded request must encode ({encoding:?}): {e}"));
        let mut codec = FrameCodec::new(encoding, usize::MAX);
        let frame = codec
            .decode(&mut buf)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("an encoded request is one whole frame ({encoding:?})"));
        assert!(buf.is_empty(), "one request, one frame ({encoding:?})");
        let again = Request::decode(encoding, &frame).unwrap_or_else(|(_, e)| {
            panic!(
                "an encoded request must decode ({encoding:?}): {}",
                e.message
            )
        });
        assert_eq!(&again, request, "request round trip ({encoding:?})");
    }
}

/// A parsed command, written as a name and arguments, parses to itself.
pub fn command_round_trips(command: &Command) {
    assert_eq!(
        Command::parse(command.name(), Some(command.args())).as_ref(),
        Ok(command),
        "command round trip"
    );
}

/// Runs every file of a corpus through a target's body (one
/// implementation for every crate's replay tests).
pub use gradebook_core::fuzzing::replay_corpus;
