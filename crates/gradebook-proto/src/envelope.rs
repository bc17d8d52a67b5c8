//! Request and reply envelopes (spec §3), in either encoding.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::{Command, Encoding, Secret, WireError};

/// A request id, echoed back in the reply: an integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// `"id": 7`
    Int(i64),
    /// `"id": "a7"`
    Str(String),
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Int(n)
    }
}

/// A request as it arrives, its command not yet parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Echoed in the reply; required on UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// The command name.
    pub cmd: String,
    /// The command's arguments (an object). Read strictly: a key given
    /// twice, at any depth, is refused (the derive already refuses an
    /// envelope field given twice).
    #[serde(
        default,
        deserialize_with = "crate::strict::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub args: Option<Value>,
    /// A session token, for requests that carry their own (UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Ignored padding (UDP's anti-amplification rule, spec §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<String>,
}

/// Just the id of a request that could not be read whole, to echo it in
/// the error reply when it can be found.
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Id>,
}

impl Request {
    /// A request for `command`, with an id.
    pub fn new(id: Option<Id>, command: &Command) -> Self {
        Request {
            id,
            cmd: command.name().to_owned(),
            args: Some(command.args()),
            token: None,
            pad: None,
        }
    }

    /// Reads one request from a frame. On failure, the error comes with the
    /// request's id when one could still be found.
    pub fn decode(encoding: Encoding, frame: &[u8]) -> Result<Request, (Option<Id>, WireError)> {
        // serde reads a struct from an array too (fields in order), but a
        // request is an object (a map) and nothing else.
        let is_map = match encoding {
            Encoding::Json => frame
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{'),
            Encoding::Msgpack => matches!(frame.first(), Some(0x80..=0x8f | 0xde | 0xdf)),
        };
        if !is_map {
            let what = match serde_json::from_slice::<serde_json::Value>(frame) {
                Ok(_) if encoding == Encoding::Json => "a request must be a JSON object",
                _ if encoding == Encoding::Json => {
                    "malformed JSON: a request must be a JSON object"
                }
                _ => "a request must be a MessagePack map",
            };
            return Err((None, WireError::bad_request(what)));
        }
        let parsed = match encoding {
            Encoding::Json => {
                serde_json::from_slice::<Request>(frame).map_err(|e| describe_json(&e))
            }
            Encoding::Msgpack => from_msgpack::<Request>(frame)
                .map_err(|e| format!("malformed MessagePack request: {e}")),
        };
        parsed.map_err(|message| {
            let id = match encoding {
                Encoding::Json => serde_json::from_slice::<IdOnly>(frame).ok(),
                Encoding::Msgpack => from_msgpack::<IdOnly>(frame).ok(),
            }
            .and_then(|i| i.id);
            (id, WireError::bad_request(message))
        })
    }

    /// Parses the command and its arguments, consuming `args`.
    pub fn command(&mut self) -> Result<Command, WireError> {
        Command::parse(&self.cmd, self.args.take())
    }
}

/// How deeply MessagePack values may nest. Requests are flat objects; the
/// decoder recurses once per level, so a few kilobytes of nested arrays
/// would otherwise overflow the stack (serde_json stops at 128 by itself).
const MSGPACK_MAX_DEPTH: usize = 64;

/// Decodes MessagePack under the nesting limit.
/// Reads a frame as an event message (protocol §9), if it is one: an
/// object with `event` and `seq`, and neither `id` nor `ok`.
pub fn decode_event(encoding: Encoding, frame: &[u8]) -> Option<crate::data::Event> {
    match encoding {
        Encoding::Json => serde_json::from_slice(frame).ok(),
        Encoding::Msgpack => from_msgpack(frame).ok(),
    }
}

fn from_msgpack<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MSGPACK_MAX_DEPTH);
    T::deserialize(&mut de)
}

/// Says what is wrong with a JSON request in words a person can act on.
fn describe_json(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("malformed JSON: {e}"),
        Category::Data => format!("bad request envelope: {e}"),
        Category::Io => "unreadable request".to_owned(),
    }
}

/// A reply: the request's id, and data or an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The id of the request this answers (null when it had none or could
    /// not be read).
    pub id: Option<Id>,
    /// `data` on success, `error` on failure.
    pub result: Result<Value, WireError>,
}

impl Reply {
    /// A success reply.
    pub fn ok(id: Option<Id>, data: Value) -> Self {
        Reply {
            id,
            result: Ok(data),
        }
    }

    /// An error reply.
    pub fn error(id: Option<Id>, error: WireError) -> Self {
        Reply {
            id,
            result: Err(error),
        }
    }

    /// Reads one reply from a frame (client side).
    pub fn decode(encoding: Encoding, frame: &[u8]) -> Result<Reply, String> {
        let raw: RawReply = match encoding {
            Encoding::Json => serde_json::from_slice(frame).map_err(|e| e.to_string())?,
            Encoding::Msgpack => from_msgpack(frame).map_err(|e| e.to_string())?,
        };
        let result = match (raw.ok, raw.data, raw.error) {
            (true, data, None) => Ok(data.unwrap_or(Value::Object(Default::default()))),
            (false, _, Some(e)) => Err(e),
            _ => return Err("reply has neither data nor error".into()),
        };
        Ok(Reply { id: raw.id, result })
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReplyOf {
            id: self.id.as_ref(),
            result: self.result.as_ref(),
        }
        .serialize(s)
    }
}

/// A reply as the server writes it, with its data as any serialisable
/// value: what a handler built goes to the wire without a detour through
/// [`Value`]. Encodes exactly as [`Reply`] does.
#[derive(Debug, Clone, Copy)]
pub struct ReplyOf<'a, D> {
    /// The id of the request this answers.
    pub id: Option<&'a Id>,
    /// `data` on success, `error` on failure.
    pub result: Result<&'a D, &'a WireError>,
}

impl<D: Serialize> Serialize for ReplyOf<'_, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &self.id)?;
        match self.result {
            Ok(data) => {
                m.serialize_entry("ok", &true)?;
                m.serialize_entry("data", data)?;
            }
            Err(e) => {
                m.serialize_entry("ok", &false)?;
                m.serialize_entry("error", e)?;
            }
        }
        m.end()
    }
}

/// What a reply says of its request, without its data: a benchmark
/// checks each reply this way, as `redis-benchmark` does, so its own
/// decoding does not crowd the server it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyStatus {
    /// The id of the request this answers.
    pub id: Option<Id>,
    /// The error, when the request failed.
    pub error: Option<WireError>,
}

impl ReplyStatus {
    /// Reads one reply's id and outcome from a frame, skipping its data.
    pub fn decode(encoding: Encoding, frame: &[u8]) -> Result<ReplyStatus, String> {
        #[derive(Deserialize)]
        struct Status {
            #[serde(default)]
            id: Option<Id>,
            ok: bool,
            #[serde(default)]
            error: Option<WireError>,
        }
        let raw: Status = match encoding {
            Encoding::Json => serde_json::from_slice(frame).map_err(|e| e.to_string())?,
            Encoding::Msgpack => from_msgpack(frame).map_err(|e| e.to_string())?,
        };
        match (raw.ok, raw.error) {
            (true, None) => Ok(ReplyStatus {
                id: raw.id,
                error: None,
            }),
            (false, Some(e)) => Ok(ReplyStatus {
                id: raw.id,
                error: Some(e),
            }),
            _ => Err("reply is neither ok nor an error".into()),
        }
    }
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    id: Option<Id>,
    ok: bool,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error: Option<WireError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn decodes_a_json_request() {
        let r = Request::decode(
            Encoding::Json,
            br#"{"id": 1, "cmd": "promotion.create", "args": {"name": "RT2"}}"#,
        )
        .expect("valid");
        assert_eq!(r.id, Some(Id::Int(1)));
        assert_eq!(r.cmd, "promotion.create");
    }

    #[test]
    fn bad_requests_keep_their_id_when_it_can_be_read() {
        let (id, e) = Request::decode(Encoding::Json, br#"{"id": "x", "cmd": 5}"#)
            .expect_err("cmd is not a string");
        assert_eq!(id, Some(Id::Str("x".into())));
        assert_eq!(e.code, ErrorCode::BadRequest);
        let (id, e) = Request::decode(Encoding::Json, b"not json").expect_err("garbage");
        assert_eq!(id, None);
        assert_eq!(e.code, ErrorCode::BadRequest);
        let (_, e) = Request::decode(Encoding::Json, b"[1, 2]").expect_err("not an object");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let (_, e) = Request::decode(Encoding::Json, br#"[1, "ping"]"#)
            .expect_err("an array in the envelope's field order is still not an object");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let array = rmp_serde::to_vec(&(1, "ping")).expect("msgpack");
        let (_, e) = Request::decode(Encoding::Msgpack, &array).expect_err("not a map");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let (_, e) = Request::decode(Encoding::Json, b"\xff\xfe{").expect_err("not UTF-8");
        assert_eq!(e.code, ErrorCode::BadRequest);
        let (id, e) = Request::decode(Encoding::Json, br#"{"id": 3, "cmd": "ping", "arg": {}}"#)
            .expect_err("unknown envelope field");
        assert_eq!(id, Some(Id::Int(3)));
        assert!(e.message.contains("arg"), "{}", e.message);
    }

    /// A map that may repeat a key, which no map type would keep: written
    /// as is, in JSON or MessagePack.
    enum Tree {
        Leaf(Value),
        Map(Vec<(&'static str, Tree)>),
    }

    impl Serialize for Tree {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Tree::Leaf(v) => v.serialize(s),
                Tree::Map(entries) => {
                    let mut m = s.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        m.serialize_entry(k, v)?;
                    }
                    m.end()
                }
            }
        }
    }

    #[test]
    fn a_key_given_twice_is_a_bad_request_that_keeps_its_id() {
        use Tree::{Leaf, Map};
        let request = |rest: Vec<(&'static str, Tree)>| {
            let mut entries = vec![("id", Leaf(json!(5)))];
            entries.extend(rest);
            Map(entries)
        };
        let cases = [
            (
                request(vec![
                    ("cmd", Leaf(json!("ping"))),
                    ("cmd", Leaf(json!("ping"))),
                ]),
                "cmd",
            ),
            (
                request(vec![
                    ("cmd", Leaf(json!("promotion.show"))),
                    (
                        "args",
                        Map(vec![("name", Leaf(json!("A"))), ("name", Leaf(json!("B")))]),
                    ),
                ]),
                "name",
            ),
            (
                request(vec![
                    ("cmd", Leaf(json!("grade.add"))),
                    (
                        "args",
                        Map(vec![(
                            "value",
                            Map(vec![
                                ("v", Leaf(json!(1))),
                                ("w", Leaf(json!([]))),
                                ("v", Leaf(json!(2))),
                            ]),
                        )]),
                    ),
                ]),
                "v",
            ),
        ];
        for (tree, key) in cases {
            let json = serde_json::to_vec(&tree).expect("json");
            let msgpack = rmp_serde::to_vec_named(&tree).expect("msgpack");
            for (encoding, frame) in [(Encoding::Json, json), (Encoding::Msgpack, msgpack)] {
                let (id, e) = Request::decode(encoding, &frame).expect_err("a key given twice");
                assert_eq!(e.code, ErrorCode::BadRequest);
                assert_eq!(id, Some(Id::Int(5)), "{}", e.message);
                assert!(
                    e.message.contains(&format!("`{key}`"))
                        || e.message.contains(&format!("'{key}'")),
                    "{}",
                    e.message
                );
            }
        }
        let (id, e) = Request::decode(Encoding::Json, br#"{"id": 5, "id": 6, "cmd": "ping"}"#)
            .expect_err("two ids");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(id, None, "which of the two ids would be the one?");
        assert!(e.message.contains("`id`"), "{}", e.message);
    }

    #[test]
    fn deeply_nested_messagepack_is_refused_not_a_stack_overflow() {
        for depth in [MSGPACK_MAX_DEPTH + 1, 1_000, 60_000] {
            // {"id": 1, "cmd": "ping", "args": [[[...nil...]]]}
            let mut m = vec![0x83, 0xa2, b'i', b'd', 1, 0xa3, b'c', b'm', b'd'];
            m.extend_from_slice(&[0xa4, b'p', b'i', b'n', b'g', 0xa4, b'a', b'r', b'g', b's']);
            m.extend(std::iter::repeat_n(0x91, depth));
            m.push(0xc0);
            let (id, e) = Request::decode(Encoding::Msgpack, &m).expect_err("too deep");
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert_eq!(id, None);
            assert!(Reply::decode(Encoding::Msgpack, &m).is_err());
        }
    }

    #[test]
    fn replies_serialise_in_the_documented_shape() {
        let ok = Reply::ok(Some(Id::Int(1)), json!({"pong": true}));
        assert_eq!(
            serde_json::to_string(&ok).expect("serialises"),
            r#"{"id":1,"ok":true,"data":{"pong":true}}"#
        );
        let err = Reply::error(None, WireError::not_found("no promotion named 'RT9'"));
        assert_eq!(
            serde_json::to_string(&err).expect("serialises"),
            r#"{"id":null,"ok":false,"error":{"code":"not_found","message":"no promotion named 'RT9'"}}"#
        );
    }

    #[test]
    fn replies_round_trip_in_both_encodings() {
        let replies = [
            Reply::ok(
                Some(Id::Str("a".into())),
                json!({"average": 12.5, "n": [1, 2]}),
            ),
            Reply::error(Some(Id::Int(-4)), WireError::internal()),
        ];
        for r in replies {
            let j = serde_json::to_vec(&r).expect("json");
            assert_eq!(Reply::decode(Encoding::Json, &j), Ok(r.clone()));
            let m = rmp_serde::to_vec_named(&r).expect("msgpack");
            assert_eq!(Reply::decode(Encoding::Msgpack, &m), Ok(r));
        }
    }

    #[test]
    fn a_reply_status_skips_the_data_and_keeps_the_outcome() {
        let replies = [
            Reply::ok(
                Some(Id::Int(7)),
                json!({"grades": [{"id": 1, "subject": "Réseaux \"RT\""}], "n": 2}),
            ),
            Reply::error(
                Some(Id::Str("b".into())),
                WireError::not_found("no student 9"),
            ),
        ];
        for r in replies {
            let expected = ReplyStatus {
                id: r.id.clone(),
                error: r.result.clone().err(),
            };
            let j = serde_json::to_vec(&r).expect("json");
            assert_eq!(
                ReplyStatus::decode(Encoding::Json, &j),
                Ok(expected.clone())
            );
            let m = rmp_serde::to_vec_named(&r).expect("msgpack");
            assert_eq!(ReplyStatus::decode(Encoding::Msgpack, &m), Ok(expected));
        }
        assert!(ReplyStatus::decode(Encoding::Json, br#"{"id": 1, "ok": false}"#).is_err());
        assert!(
            ReplyStatus::decode(Encoding::Json, br#"{"id": 1, "ok": true, "data": [}"#).is_err()
        );
    }
}
