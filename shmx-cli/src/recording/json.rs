//! Recordings in JSON: a [`Transcode`] that writes each channel's schema as a JSON Schema
//! (`jsonschema`) and each sample as the JSON `shmx echo` prints (`json`), which Foxglove and
//! other MCAP tools show with field names.

use crate::codec::{self, Ty};
use serde_json::{json, Map, Value};
use shmx::message::Primitive;
use shmx_record::{Encoding, TopicType, Transcode};
use std::collections::HashMap;

/// JSON Schema and JSON messages, types parsed once per topic.
#[derive(Default)]
pub struct Json {
    types: HashMap<String, Ty>,
}

impl Json {
    fn ty(&mut self, topic: &TopicType) -> Result<&Ty, String> {
        if !self.types.contains_key(&topic.schema) {
            if codec::is_archived(&topic.schema) {
                return Err("archived rkyv values have no layout to write as JSON".to_owned());
            }
            let ty = codec::parse(&topic.schema).map_err(|e| e.to_string())?;
            self.types.insert(topic.schema.clone(), ty);
        }
        Ok(&self.types[&topic.schema])
    }
}

impl Transcode for Json {
    fn encoding(&mut self, topic: &TopicType) -> Result<Encoding, String> {
        let mut schema = schema_of(self.ty(topic)?);
        if let Value::Object(o) = &mut schema {
            o.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
            o.insert("title".into(), topic.type_name.clone().into());
        }
        Ok(Encoding {
            schema_name: topic.type_name.clone(),
            schema_encoding: "jsonschema".to_owned(),
            schema_data: serde_json::to_vec(&schema).map_err(|e| e.to_string())?,
            message_encoding: "json".to_owned(),
        })
    }

    fn message(
        &mut self,
        topic: &TopicType,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let value = codec::decode(self.ty(topic)?, bytes, usize::MAX)?;
        serde_json::to_writer(out, &value).map_err(|e| e.to_string())
    }
}

/// The JSON Schema of the values `codec::decode` makes of type `ty` (see `codec` for the
/// JSON form: 128-bit integers as strings, non-finite floats as strings, enums as names).
fn schema_of(ty: &Ty) -> Value {
    match ty {
        Ty::Primitive(p) => primitive(*p),
        Ty::Struct { fields, .. } => {
            let mut props = Map::new();
            for (name, _, t) in fields {
                props.insert(name.clone(), schema_of(t));
            }
            let required: Vec<&str> = fields.iter().map(|(n, _, _)| n.as_str()).collect();
            json!({"type": "object", "properties": props, "required": required})
        }
        Ty::Array { elem, len } => {
            json!({"type": "array", "items": schema_of(elem), "minItems": len, "maxItems": len})
        }
        Ty::Enum { variants, .. } => {
            let names: Vec<&str> = variants.iter().map(|(n, _)| n.as_str()).collect();
            // A byte that names no variant decodes as its number.
            json!({"anyOf": [{"type": "string", "enum": names}, {"type": "integer"}]})
        }
        Ty::RelSlice { elem } => json!({"type": "array", "items": schema_of(elem)}),
        Ty::RelStr => json!({"type": "string"}),
    }
}

fn primitive(p: Primitive) -> Value {
    match p {
        Primitive::U128 | Primitive::I128 => json!({"type": ["string", "integer"]}),
        Primitive::F32 | Primitive::F64 => json!({"type": ["number", "string"]}),
        Primitive::Bool => json!({"type": ["boolean", "integer"]}),
        _ => json!({"type": "integer"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_and_messages_name_every_field() {
        let schema = "Note(16,4){id@0:u32,mode@4:M:u8{A=0,B=1},_pad@5:[u8;3],text@8:relstr}";
        let ty = TopicType {
            topic: "t".into(),
            type_name: "Note".into(),
            fingerprint: 0,
            size: 16,
            schema: schema.into(),
        };
        let mut json = Json::default();
        let enc = json.encoding(&ty).unwrap();
        let s: Value = serde_json::from_slice(&enc.schema_data).unwrap();
        assert_eq!(s["title"], "Note");
        assert_eq!(s["properties"]["id"]["type"], "integer");
        assert_eq!(s["properties"]["text"]["type"], "string");
        assert_eq!(
            s["properties"]["mode"]["anyOf"][0]["enum"],
            json!(["A", "B"])
        );
        assert_eq!(s["properties"]["_pad"]["maxItems"], 3);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        bytes.extend_from_slice(&[1, 0, 0, 0]);
        bytes.extend_from_slice(&8u32.to_ne_bytes());
        bytes.extend_from_slice(&2u32.to_ne_bytes());
        bytes.extend_from_slice(b"hi");
        let mut out = Vec::new();
        json.message(&ty, &bytes, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"id": 7, "mode": "B", "_pad": [0, 0, 0], "text": "hi"})
        );
        // A relative pointer out of bounds is refused, not read.
        bytes[8] = 200;
        assert!(json.message(&ty, &bytes, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_slice_of_zero_sized_elements_cannot_claim_billions() {
        // An attacker's type and sample: 2^32 - 1 elements of no bytes (found by review:
        // decoded whole, it asked for ~137 GB).
        let ty = TopicType {
            topic: "t".into(),
            type_name: "M".into(),
            fingerprint: 0,
            size: 8,
            schema: "M(8,4){r@0:rel[E(0,1){}]}".into(),
        };
        let mut bytes = 8u32.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
        let err = Json::default()
            .message(&ty, &bytes, &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("elements of no bytes"), "{err}");
        // As many as a tail may hold are decoded.
        let mut bytes = 8u32.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&3u32.to_ne_bytes());
        let mut out = Vec::new();
        Json::default().message(&ty, &bytes, &mut out).unwrap();
        assert_eq!(out, br#"{"r":[{},{},{}]}"#);
    }

    #[test]
    fn archived_topics_are_refused() {
        let ty = TopicType {
            topic: "t".into(),
            type_name: "T".into(),
            fingerprint: 0,
            size: 0,
            schema: "rkyv:T".into(),
        };
        assert!(Json::default().encoding(&ty).is_err());
    }
}
