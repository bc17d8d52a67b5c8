//! The body of the `udp_datagram` fuzz target: one datagram through every
//! step of [`super::answer`] that needs neither the store nor a session —
//! the checks before anything runs, the command's parsing, and the shaping
//! of the reply under the size limit and the three-times rule.

use gradebook_proto::codec::to_datagram;
use gradebook_proto::fuzzing::{command_round_trips, request_round_trips};
use gradebook_proto::{Encoding, Id, Reply};
use serde_json::json;

use super::cache::Sent;
use super::{Admitted, MAX_ID_BYTES, Room, admit, id_key, refusal, replay, shape};

/// The UDP reply limits each datagram is tried under: one so tight that
/// most replies must be cut down, the default, and the largest datagram.
const MAX_REPLIES: [usize; 3] = [64, 1200, 65_507];

/// Target `udp_datagram`: one datagram's payload, as the server reads it,
/// with TLS off and on, under each reply limit. Panics when a reply could
/// break the anti-amplification rule or the size limit, when a request that
/// passes does not read back the same once encoded again, or when an
/// admitted request breaks a rule it was admitted under.
pub fn udp_datagram(data: &[u8]) {
    let encoding = Encoding::sniff(data);
    for max_reply in MAX_REPLIES {
        let pre_auth = Room::pre_auth(max_reply, data.len());
        assert!(pre_auth.bytes <= max_reply && pre_auth.bytes <= data.len().saturating_mul(3));
        if let Some(bytes) = refusal(max_reply, data) {
            check_sent(encoding, &bytes, pre_auth);
        }
        for tls in [false, true] {
            let reply = match admit(encoding, data, tls) {
                Err((id, e)) => Reply::error(id, e),
                Ok(admitted) => answer(encoding, data, tls, admitted),
            };
            shaped(max_reply, encoding, &reply, pre_auth);
            if reply.id.is_some() {
                shaped(max_reply, encoding, &reply, Room::authenticated(max_reply));
            }
        }
    }
}

/// Checks an admitted request against the rules it passed, round-trips it,
/// and stands in for running it: the reply echoes the parsed command, so
/// its size follows the request's as real replies often do.
fn answer(encoding: Encoding, data: &[u8], tls: bool, admitted: Admitted) -> Reply {
    let Admitted { id, mut request } = admitted;
    if let Id::Str(s) = &id {
        assert!(s.len() <= MAX_ID_BYTES, "a {}-byte id admitted", s.len());
    }
    if tls {
        assert!(matches!(request.cmd.as_str(), "hello" | "ping"));
    }
    // The store and the cache know the id by its JSON text: it must read
    // back as the same id, so 7 and "7" stay apart.
    let key = id_key(&id);
    assert_eq!(serde_json::from_str::<Id>(&key).ok().as_ref(), Some(&id));

    let mut whole = request.clone();
    whole.id = Some(id.clone());
    request_round_trips(&whole);
    let again = to_datagram(encoding, &whole)
        .unwrap_or_else(|e| panic!("an admitted request must encode: {e}"));
    assert_eq!(Encoding::sniff(&again), encoding, "sniffed from {data:?}");
    let readmitted = admit(encoding, &again, tls)
        .unwrap_or_else(|(_, e)| panic!("an admitted request, encoded again: {}", e.message));
    assert_eq!(readmitted.id, id);
    assert_eq!(readmitted.request, request);

    let result = request.command().map(|command| {
        command_round_trips(&command);
        json!({"cmd": command.name(), "write": crate::facts::facts(&command).udp_write, "args": command.args()})
    });
    Reply {
        id: Some(id),
        result,
    }
}

/// Shapes `reply` within `room` and checks what would be sent.
fn shaped(max_reply: usize, encoding: Encoding, reply: &Reply, room: Room) {
    let Some(bytes) = shape(max_reply, encoding, reply, room) else {
        return;
    };
    let sent = check_sent(encoding, &bytes, room);
    assert_eq!(sent.id, reply.id, "a shaped reply keeps its id");
    match (&sent.result, &reply.result) {
        (Ok(_), Ok(_)) => assert_eq!(&sent, reply, "a reply that fits is sent as it is"),
        // An error keeps its code (only its message may be shortened); a
        // success too large to send becomes too_large.
        (Err(e), Err(original)) => assert_eq!(e.code, original.code),
        (Err(e), Ok(_)) => assert_eq!(e.code, gradebook_proto::ErrorCode::TooLarge),
        (Ok(_), Err(_)) => panic!("an error became a success"),
    }
}

/// A reply datagram fits its room, reads back, and replays in either
/// encoding (a retry may switch encodings).
fn check_sent(encoding: Encoding, bytes: &[u8], room: Room) -> Reply {
    assert!(
        bytes.len() <= room.bytes,
        "a {}-byte reply in {} bytes of room",
        bytes.len(),
        room.bytes
    );
    let sent = Reply::decode(encoding, bytes)
        .unwrap_or_else(|e| panic!("a reply the server sends must read back: {e}"));
    for other in [Encoding::Json, Encoding::Msgpack] {
        let copy = Sent {
            encoding,
            bytes: bytes.to_vec(),
        };
        let replayed = replay(copy, other).unwrap_or_else(|| panic!("no replay in {other:?}"));
        assert_eq!(Reply::decode(other, &replayed).as_ref(), Ok(&sent));
    }
    sent
}
