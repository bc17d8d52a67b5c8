//! Reading a request's `args` strictly, in either encoding.
//!
//! serde_json's own `Value` keeps the last of two equal keys, so
//! `{"name": "A", "name": "B"}` would silently mean `B`. The spec makes a
//! key given twice anywhere in a request a `bad_request`; [`StrictValue`]
//! builds the same `Value` through serde's data model, so one visitor
//! serves JSON and MessagePack alike, and refuses a repeated key at any
//! depth. It costs one hash lookup per key, the one `insert` made anyway.
//!
//! It also takes a MessagePack 32-bit float at its decimal: `12.34f32` is
//! not the double nearest 12.34 once widened, so it becomes that double
//! when it is the `f32` nearest to a number with at most two decimals
//! (the values' rule, spec §4), and stays what it is otherwise, which the
//! values' check then refuses. NaN and infinities, which a `Value` cannot
//! hold (serde_json would turn them into `null`, and a `null` coefficient
//! into the default one), are refused here.

use std::fmt;

use gradebook_core::value::f32_to_hundredths;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// A `Value` read without duplicate keys.
#[derive(Debug)]
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

/// For `#[serde(deserialize_with)]` on an optional field.
pub(crate) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Option::<StrictValue>::deserialize(d).map(|v| v.map(|StrictValue(v)| v))
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number this protocol accepts")))
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Value, E> {
        match f32_to_hundredths(v) {
            Some(h) => self.visit_f64(h as f64 / 100.0),
            None => self.visit_f64(f64::from(v)),
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|StrictValue(v)| v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // The hint comes from the client: trust it only so far.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // The hint comes from the client: trust it only so far.
        let mut object = Map::with_capacity(map.size_hint().unwrap_or(0).min(16));
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    let StrictValue(v) = map.next_value()?;
                    slot.insert(v);
                }
                Entry::Occupied(slot) => {
                    return Err(de::Error::custom(format!(
                        "the key '{}' is given twice",
                        slot.key().escape_debug()
                    )));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_json(text: &str) -> Result<Value, String> {
        serde_json::from_str::<StrictValue>(text)
            .map(|StrictValue(v)| v)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            from_json(text),
            Ok(serde_json::from_str::<Value>(text).expect("valid"))
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        for text in [
            r#"{"name": "A", "name": "B"}"#,
            r#"{"x": {"name": 1, "name": 1}}"#,
            r#"{"x": [{"y": 1}, {"name": 1, "z": 2, "name": 1}]}"#,
        ] {
            let e = from_json(text).expect_err("duplicate");
            assert!(e.contains("'name' is given twice"), "{e}");
        }
        let mut m = vec![0x82, 0xa4];
        m.extend_from_slice(b"name");
        m.push(0x01);
        m.push(0xa4);
        m.extend_from_slice(b"name");
        m.push(0x02);
        let e = rmp_serde::from_slice::<StrictValue>(&m).expect_err("duplicate");
        assert!(e.to_string().contains("'name' is given twice"), "{e}");
    }

    #[test]
    fn single_precision_floats_stand_for_their_decimal() {
        let read = |x: f32| {
            let bytes = rmp_serde::to_vec(&x).expect("msgpack");
            rmp_serde::from_slice::<StrictValue>(&bytes).map(|StrictValue(v)| v)
        };
        assert_eq!(read(12.34).expect("valid"), json!(12.34));
        assert_eq!(read(0.1).expect("valid"), json!(0.1));
        let off = read(12.34f32.next_up()).expect("a number");
        assert_eq!(off, json!(f64::from(12.34f32.next_up())));
        assert!(read(f32::NAN).is_err());
        let nan = rmp_serde::to_vec(&f64::NAN).expect("msgpack");
        assert!(rmp_serde::from_slice::<StrictValue>(&nan).is_err());
    }
}
