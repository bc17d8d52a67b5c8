//! The codecs: decoding a request and encoding a reply, in JSON and
//! MessagePack. `cargo bench -p gradebook-proto`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use gradebook_proto::codec::{FrameCodec, to_datagram, write_frame};
use gradebook_proto::{Encoding, Id, Reply, Request};
use serde_json::json;
use tokio_util::codec::Decoder;

fn bench(c: &mut Criterion) {
    let request = Request {
        id: Some(Id::Int(42)),
        cmd: "student.average".into(),
        args: Some(json!({"id": 1234})),
        token: None,
        pad: None,
    };
    let reply = Reply::ok(
        Some(Id::Int(42)),
        json!({"id": 1234, "average": 12.345678, "counted": 20, "coefficients": 31.5, "incomplete": false}),
    );
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let name = encoding.as_str();
        let bytes = to_datagram(encoding, &request).expect("encodes");
        c.bench_function(&format!("decode request/{name}"), |b| {
            b.iter(|| {
                let mut r = Request::decode(encoding, black_box(&bytes)).expect("decodes");
                r.command().expect("parses")
            })
        });
        let mut out = BytesMut::with_capacity(4096);
        c.bench_function(&format!("encode reply/{name}"), |b| {
            b.iter(|| {
                out.clear();
                write_frame(encoding, black_box(&reply), &mut out).expect("encodes");
            })
        });
    }

    // Cutting frames out of what a socket read: a client reading
    // `student.show` replies (20 grades, about 1.5 KB a line), 16 in one
    // read as a pipelining client gets them.
    let grades: Vec<_> = (0..20)
        .map(|i| json!({"id": 1000 + i, "subject": "Networks", "value": 14.5, "coefficient": 2, "label": "Midterm", "published": true}))
        .collect();
    let show = Reply::ok(Some(Id::Int(42)), json!({"id": 1234, "grades": grades}));
    let mut lines = BytesMut::new();
    for _ in 0..16 {
        write_frame(Encoding::Json, &show, &mut lines).expect("encodes");
    }
    let mut codec = FrameCodec::new(Encoding::Json, 1 << 20);
    c.bench_function("cut 16 student.show replies/json", |b| {
        b.iter(|| {
            let mut src = lines.clone();
            let mut n = 0;
            while let Some(line) = codec.decode(&mut src).expect("decodes") {
                n += line.len();
            }
            n
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
