//! Framing: cutting a byte stream into messages under a size limit.
//!
//! A TCP connection starts in JSON Lines (one object per line, `\n` or
//! `\r\n`, empty lines ignored) and may switch to length-prefixed
//! MessagePack (a 4-byte big-endian length, then the bytes). Either way a
//! message longer than the limit is an error *before* it is buffered whole:
//! the decoder looks at most `max_frame` bytes ahead.

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use tokio_util::codec::Decoder;

/// The presentation-layer encoding of a connection or datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 JSON objects (JSON Lines on TCP).
    #[default]
    Json,
    /// MessagePack maps (length-prefixed on TCP).
    Msgpack,
}

impl Encoding {
    /// The name used by `hello` (`json`, `msgpack`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Msgpack => "msgpack",
        }
    }

    /// Recognises an encoding name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Encoding::Json),
            "msgpack" => Some(Encoding::Msgpack),
            _ => None,
        }
    }

    /// Guesses a datagram's encoding from its first byte: JSON objects start
    /// with `{` (or white space), MessagePack maps with 0x80–0x8f, 0xde, 0xdf.
    pub fn sniff(payload: &[u8]) -> Encoding {
        match payload.first() {
            Some(b'{' | b' ' | b'\t' | b'\r' | b'\n') => Encoding::Json,
            Some(0x80..=0x8f | 0xde | 0xdf) => Encoding::Msgpack,
            _ => Encoding::Json,
        }
    }
}

/// What can go wrong while cutting frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A message longer than the limit.
    #[error("message longer than {max} bytes")]
    TooLarge {
        /// The limit in force.
        max: usize,
    },
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Cuts frames out of a byte stream in the current encoding.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    encoding: Encoding,
    max_frame: usize,
    /// How far the buffer has already been searched for `\n`, so a line
    /// arriving in many small reads is not rescanned from the start.
    scanned: usize,
}

impl FrameCodec {
    /// A codec in `encoding` that refuses messages over `max_frame` bytes.
    pub fn new(encoding: Encoding, max_frame: usize) -> Self {
        FrameCodec {
            encoding,
            max_frame,
            scanned: 0,
        }
    }

    /// The current encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Switches the encoding for the frames that follow.
    pub fn set_encoding(&mut self, encoding: Encoding) {
        self.encoding = encoding;
        self.scanned = 0;
    }

    /// The size limit in force.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Changes the size limit (larger once a connection has logged in).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Appends `message` to `dst` as one frame in the current encoding.
    pub fn encode<T: Serialize>(&self, message: &T, dst: &mut BytesMut) -> Result<(), String> {
        write_frame(self.encoding, message, dst)
    }
}

/// Appends `message` to `dst` as one frame of `encoding`: a JSON line, or a
/// length-prefixed MessagePack map.
pub fn write_frame<T: Serialize>(
    encoding: Encoding,
    message: &T,
    dst: &mut BytesMut,
) -> Result<(), String> {
    match encoding {
        Encoding::Json => {
            let mut w = dst.writer();
            serde_json::to_writer(&mut w, message).map_err(|e| e.to_string())?;
            w.into_inner().put_u8(b'\n');
        }
        Encoding::Msgpack => {
            let start = dst.len();
            dst.put_u32(0);
            let mut w = dst.writer();
            rmp_serde::encode::write_named(&mut w, message).map_err(|e| e.to_string())?;
            let dst = w.into_inner();
            let len = u32::try_from(dst.len() - start - 4).map_err(|e| e.to_string())?;
            dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// Encodes `message` as one datagram payload (no framing: the datagram is
/// the frame).
pub fn to_datagram<T: Serialize>(encoding: Encoding, message: &T) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Json => serde_json::to_vec(message).map_err(|e| e.to_string()),
        Encoding::Msgpack => rmp_serde::to_vec_named(message).map_err(|e| e.to_string()),
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.encoding {
            Encoding::Json => self.decode_line(src),
            Encoding::Msgpack => self.decode_prefixed(src),
        }
    }
}

impl FrameCodec {
    fn decode_line(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        loop {
            let Some(offset) = memchr::memchr(b'\n', &src[self.scanned..]) else {
                self.scanned = src.len();
                // Without a newline yet, anything past the limit (plus room
                // for "\r\n") can only be part of an over-long line.
                if src.len() > self.max_frame + 2 {
                    return Err(FrameError::TooLarge {
                        max: self.max_frame,
                    });
                }
                return Ok(None);
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            let mut line = src.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if line.len() > self.max_frame {
                return Err(FrameError::TooLarge {
                    max: self.max_frame,
                });
            }
            if line.is_empty() {
                continue;
            }
            return Ok(Some(line));
        }
    }

    fn decode_prefixed(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                max: self.max_frame,
            });
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: &mut FrameCodec, input: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decodes") {
            out.push(f.to_vec());
        }
        out
    }

    #[test]
    fn cuts_lines_and_skips_empty_ones() {
        let mut c = FrameCodec::new(Encoding::Json, 100);
        assert_eq!(
            frames(&mut c, b"{\"a\":1}\n\r\n\n{\"b\":2}\r\n{\"c\""),
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
    }

    #[test]
    fn a_line_split_across_reads_is_found_once_whole() {
        let mut c = FrameCodec::new(Encoding::Json, 100);
        let mut buf = BytesMut::from(&b"{\"cmd\":"[..]);
        assert!(c.decode(&mut buf).expect("ok").is_none());
        buf.extend_from_slice(b"\"ping\"}\nrest");
        assert_eq!(
            c.decode(&mut buf).expect("ok").as_deref(),
            Some(&b"{\"cmd\":\"ping\"}"[..])
        );
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn an_over_long_line_is_refused_before_it_ends() {
        let mut c = FrameCodec::new(Encoding::Json, 10);
        let mut buf = BytesMut::from(&[b'x'; 13][..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::TooLarge { max: 10 })
        ));
        let mut c = FrameCodec::new(Encoding::Json, 10);
        let mut buf = BytesMut::from(&b"01234567890\n"[..]);
        assert!(matches!(
            c.decode(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        let mut c = FrameCodec::new(Encoding::Json, 10);
        let mut buf = BytesMut::from(&b"0123456789\r\n"[..]);
        assert_eq!(
            c.decode(&mut buf).expect("at the limit").map(|f| f.len()),
            Some(10)
        );
    }

    #[test]
    fn length_prefixed_frames() {
        let mut c = FrameCodec::new(Encoding::Msgpack, 10);
        let mut buf = BytesMut::new();
        write_frame(Encoding::Msgpack, &"hi", &mut buf).expect("encodes");
        write_frame(Encoding::Msgpack, &7u8, &mut buf).expect("encodes");
        let f1 = c.decode(&mut buf).expect("ok").expect("a frame");
        assert_eq!(rmp_serde::from_slice::<String>(&f1).expect("msgpack"), "hi");
        let f2 = c.decode(&mut buf).expect("ok").expect("a frame");
        assert_eq!(rmp_serde::from_slice::<u8>(&f2).expect("msgpack"), 7);
        assert!(c.decode(&mut buf).expect("ok").is_none());
        let mut big = BytesMut::from(&[0u8, 0, 0, 11][..]);
        assert!(matches!(
            c.decode(&mut big),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn sniffs_datagram_encodings() {
        assert_eq!(Encoding::sniff(b"{\"id\":1}"), Encoding::Json);
        let m = rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("id", 1)]))
            .expect("msgpack");
        assert_eq!(Encoding::sniff(&m), Encoding::Msgpack);
    }
}
