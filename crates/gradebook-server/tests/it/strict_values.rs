//! Strict values over the wire (spec §3, §4): numbers are exactly 2
//! decimals or refused, a key given twice is refused, names are NFC and
//! without invisible characters; in JSON and in MessagePack.

use crate::common;

use bytes::BytesMut;
use common::{TestServer, err, ok, promotion_with_students};
use gradebook_client::Client;
use gradebook_proto::codec::write_frame;
use gradebook_proto::{Encoding, ErrorCode, Id, Reply};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

/// Numbers that are close to a hundredth but are not one.
const NEARLY: [f64; 3] = [19.999999999, 12.250000001, 4.9e-324];

/// A request as it goes on the wire, which may repeat a key or carry a
/// 32-bit float: neither survives a `serde_json::Value`.
enum Tree {
    Leaf(Value),
    F32(f32),
    Map(Vec<(&'static str, Tree)>),
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Leaf(v) => v.serialize(s),
            Tree::F32(x) => s.serialize_f32(*x),
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

/// Sends `tree` as one frame in the connection's encoding; the reply.
async fn send_tree(c: &mut Client, encoding: Encoding, tree: &Tree) -> Reply {
    let mut frame = BytesMut::new();
    write_frame(encoding, tree, &mut frame).expect("encodes");
    c.send_raw(&frame).await.expect("sends");
    c.recv().await.expect("a reply")
}

fn code(reply: &Reply) -> Option<ErrorCode> {
    reply.result.as_ref().err().map(|e| e.code)
}

#[tokio::test]
async fn numbers_near_a_hundredth_are_refused_not_rounded() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    let student = ids[0];
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let mut c = server.admin().await;
        c.use_encoding(encoding).await.expect("switches");
        for x in NEARLY {
            let m = err(
                &mut c,
                "grade.add",
                json!({"student": student, "subject": "S", "value": x}),
                "invalid_value",
            )
            .await;
            assert!(m.contains("2 decimals"), "{m}");
            err(
                &mut c,
                "grade.add",
                json!({"student": student, "subject": "S", "value": 12, "coefficient": x}),
                "invalid_value",
            )
            .await;
            err(
                &mut c,
                "grade.update",
                json!({"id": 1, "coefficient": x}),
                "invalid_value",
            )
            .await;
        }
        // The decimals themselves, and integers, are taken exactly.
        let g = ok(
            &mut c,
            "grade.add",
            json!({"student": student, "subject": "S", "value": 12.25, "coefficient": 2}),
        )
        .await;
        assert_eq!(g["value"], json!(12.25));
        assert_eq!(g["coefficient"], json!(2.0));
    }
    let listed = ok(&mut c, "grade.list", json!({"student": student})).await;
    assert_eq!(listed["grades"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn messagepack_f32_stands_for_the_decimal_it_is_nearest_to() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    c.use_encoding(Encoding::Msgpack).await.expect("switches");
    let add = |value: Tree, coefficient: Tree| {
        Tree::Map(vec![
            ("id", Tree::Leaf(json!(9))),
            ("cmd", Tree::Leaf(json!("grade.add"))),
            (
                "args",
                Tree::Map(vec![
                    ("student", Tree::Leaf(json!(ids[0]))),
                    ("subject", Tree::Leaf(json!("S"))),
                    ("value", value),
                    ("coefficient", coefficient),
                ]),
            ),
        ])
    };
    let reply = send_tree(
        &mut c,
        Encoding::Msgpack,
        &add(Tree::F32(12.34), Tree::F32(1.5)),
    )
    .await;
    let data = reply.result.expect("12.34f32 is 12.34");
    assert_eq!(data["value"], json!(12.34));
    assert_eq!(data["coefficient"], json!(1.5));
    for (value, coefficient) in [
        (Tree::F32(12.34f32.next_up()), Tree::F32(1.0)),
        (Tree::F32(12.0), Tree::F32(0.1f32.next_down())),
        (Tree::F32(f32::from_bits(1)), Tree::F32(1.0)),
    ] {
        let reply = send_tree(&mut c, Encoding::Msgpack, &add(value, coefficient)).await;
        assert_eq!(code(&reply), Some(ErrorCode::InvalidValue), "{reply:?}");
        assert_eq!(reply.id, Some(Id::Int(9)));
    }
    // NaN is no number at all: a malformed request, not the default
    // coefficient.
    let reply = send_tree(
        &mut c,
        Encoding::Msgpack,
        &add(Tree::F32(12.0), Tree::F32(f32::NAN)),
    )
    .await;
    assert_eq!(code(&reply), Some(ErrorCode::BadRequest), "{reply:?}");
}

#[tokio::test]
async fn a_key_given_twice_is_a_bad_request_naming_it() {
    use Tree::{Leaf, Map};
    let server = TestServer::start().await;
    let envelope = || {
        Map(vec![
            ("id", Leaf(json!(3))),
            ("cmd", Leaf(json!("promotion.create"))),
            ("cmd", Leaf(json!("promotion.create"))),
            ("args", Map(vec![("name", Leaf(json!("A")))])),
        ])
    };
    let args = || {
        Map(vec![
            ("id", Leaf(json!(3))),
            ("cmd", Leaf(json!("promotion.create"))),
            (
                "args",
                Map(vec![("name", Leaf(json!("A"))), ("name", Leaf(json!("B")))]),
            ),
        ])
    };
    let nested = || {
        Map(vec![
            ("id", Leaf(json!(3))),
            ("cmd", Leaf(json!("grade.add"))),
            (
                "args",
                Map(vec![
                    ("student", Leaf(json!(1))),
                    ("subject", Leaf(json!("S"))),
                    (
                        "value",
                        Map(vec![("n", Leaf(json!(1))), ("n", Leaf(json!(2)))]),
                    ),
                ]),
            ),
        ])
    };
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let mut c = server.admin().await;
        c.use_encoding(encoding).await.expect("switches");
        for (tree, key) in [(envelope(), "cmd"), (args(), "name"), (nested(), "n")] {
            let reply = send_tree(&mut c, encoding, &tree).await;
            let e = reply.result.expect_err("a key given twice");
            assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
            assert!(
                e.message.contains(&format!("`{key}`")) || e.message.contains(&format!("'{key}'")),
                "{encoding:?}: {}",
                e.message
            );
            assert_eq!(reply.id, Some(Id::Int(3)), "the id is known");
        }
        // Nothing was created under either name, and the connection is fine.
        err(&mut c, "promotion.show", json!({"name": "A"}), "not_found").await;
        err(&mut c, "promotion.show", json!({"name": "B"}), "not_found").await;
    }
}

#[tokio::test]
async fn invisible_characters_make_no_lookalike_accounts() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    for username in [
        "admin\u{200b}",
        "\u{202e}nimda",
        "ad\u{ad}min",
        "admin\u{feff}",
    ] {
        let m = err(
            &mut c,
            "user.create",
            json!({"username": username, "password": "long enough password", "role": "admin"}),
            "invalid_value",
        )
        .await;
        assert!(m.contains("username"), "{m}");
    }
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    for (cmd, args) in [
        ("promotion.create", json!({"name": "P\u{200d}"})),
        (
            "student.add",
            json!({"promotion": "P", "first_name": "Ada\u{2066}", "last_name": "L"}),
        ),
        (
            "student.add",
            json!({"promotion": "P", "first_name": "Ada", "last_name": "L\u{2028}"}),
        ),
    ] {
        err(&mut c, cmd, args, "invalid_value").await;
    }
}

#[tokio::test]
async fn names_are_stored_and_found_in_nfc() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let decomposed = "E\u{301}cole";
    let composed = "\u{c9}cole";
    let p = ok(&mut c, "promotion.create", json!({"name": decomposed})).await;
    assert_eq!(p["name"], composed);
    err(
        &mut c,
        "promotion.create",
        json!({"name": composed}),
        "conflict",
    )
    .await;
    for name in [composed, decomposed] {
        let shown = ok(&mut c, "promotion.show", json!({"name": name})).await;
        assert_eq!(shown["name"], composed);
    }
    let list = ok(&mut c, "promotion.list", json!({})).await;
    let names: Vec<&str> = list["promotions"]
        .as_array()
        .expect("promotions")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, [composed]);

    // The other names, and lookups by them, over MessagePack too.
    c.use_encoding(Encoding::Msgpack).await.expect("switches");
    let s = ok(
        &mut c,
        "student.add",
        json!({"promotion": decomposed, "first_name": "Ame\u{301}lie", "last_name": "Lefe\u{300}vre"}),
    )
    .await;
    assert_eq!(s["first_name"], "Am\u{e9}lie");
    assert_eq!(s["last_name"], "Lef\u{e8}vre");
    let g = ok(
        &mut c,
        "grade.add",
        json!({"student": s["id"], "subject": "Re\u{301}seaux", "value": 15, "label": "Oral e\u{301}crit"}),
    )
    .await;
    assert_eq!(g["subject"], "R\u{e9}seaux");
    assert_eq!(g["label"], "Oral \u{e9}crit");
    ok(
        &mut c,
        "user.create",
        json!({"username": "Jose\u{301}", "password": "long enough password", "role": "teacher"}),
    )
    .await;
    ok(
        &mut c,
        "promotion.grant",
        json!({"name": composed, "username": "Jos\u{e9}"}),
    )
    .await;
    let mut teacher = server.connect().await;
    teacher
        .login("Jose\u{301}", "long enough password")
        .await
        .expect("the same username, decomposed");
    let shown = ok(&mut teacher, "promotion.show", json!({"name": decomposed})).await;
    assert_eq!(shown["students"].as_array().map(Vec::len), Some(1));
}
