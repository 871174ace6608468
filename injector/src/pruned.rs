//! Decoding only the parts of a pod spec the injector reads.
//!
//! The engine looks at `hostNetwork`, `restartPolicy`, and the names, ports
//! and restart policies of containers, plus the names of volumes and pull
//! secrets. Everything else (env, resources, probes, ...) is skipped while
//! the JSON is read, never allocated: for a pod with 2,000 env vars that is
//! most of the request. Values of the wrong type are kept as they are, so
//! the engine still reports them by field.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The fields kept at each level.
#[derive(Clone, Copy)]
enum Level {
    /// The pod spec itself.
    Spec,
    /// An entry of containers or initContainers.
    Container,
    /// An entry of volumes or imagePullSecrets.
    Named,
}

impl Level {
    fn keep(self, key: &str) -> Option<Child> {
        match (self, key) {
            (Level::Spec, "containers" | "initContainers") => Some(Child::ListOf(Level::Container)),
            (Level::Spec, "volumes" | "imagePullSecrets") => Some(Child::ListOf(Level::Named)),
            (Level::Spec, "hostNetwork" | "restartPolicy") => Some(Child::Whole),
            (Level::Container, "name" | "ports" | "restartPolicy") => Some(Child::Whole),
            (Level::Named, "name") => Some(Child::Whole),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Child {
    /// Kept as it is.
    Whole,
    /// A list whose object entries are pruned at the given level.
    ListOf(Level),
}

/// A pod spec with only what the engine reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrunedSpec(pub Value);

impl<'de> Deserialize<'de> for PrunedSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectSeed(Level::Spec).deserialize(d).map(PrunedSpec)
    }
}

impl serde::Serialize for PrunedSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// An object pruned at `level`; anything that is not an object is kept.
struct ObjectSeed(Level);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(PruneVisitor(Some(self.0)))
    }
}

/// A list whose object entries are pruned at `level`.
struct ListSeed(Level);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ListVisitor(self.0))
    }
}

/// Builds a `Value`, pruning maps when a level is given.
struct PruneVisitor(Option<Level>);

macro_rules! keep_scalar {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, v: $ty) -> Result<Value, E> {
            Ok(Value::from(v))
        }
    )*};
}

impl<'de> Visitor<'de> for PruneVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    keep_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = match self.0 {
                None => Some(Child::Whole),
                Some(level) => level.keep(&key),
            };
            let value = match child {
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Some(Child::Whole) => map.next_value::<Value>()?,
                Some(Child::ListOf(level)) => map.next_value_seed(ListSeed(level))?,
            };
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

struct ListVisitor(Level);

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(ObjectSeed(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    // Not a list: keep it whole so the engine names the field.
    keep_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        PruneVisitor(None).visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prune(v: Value) -> Value {
        serde_json::from_str::<PrunedSpec>(&v.to_string())
            .unwrap()
            .0
    }

    #[test]
    fn keeps_what_the_engine_reads_and_drops_the_rest() {
        let spec = json!({
            "hostNetwork": false,
            "restartPolicy": "Never",
            "dnsPolicy": "ClusterFirst",
            "containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
            "initContainers": [{"name": "proxy", "restartPolicy": "Always", "args": ["a"]}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}],
            "imagePullSecrets": [{"name": "s"}]
        });
        assert_eq!(
            prune(spec),
            json!({
                "hostNetwork": false,
                "restartPolicy": "Never",
                "containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "volumes": [{"name": "v"}],
                "imagePullSecrets": [{"name": "s"}]
            })
        );
    }

    #[test]
    fn wrong_types_survive_for_the_engine_to_report() {
        for spec in [
            json!("nope"),
            json!({"containers": {"a": 1}}),
            json!({"containers": [1, "x"]}),
            json!({"hostNetwork": "yes"}),
        ] {
            assert_eq!(prune(spec.clone()), spec);
        }
        assert_eq!(prune(json!({})), json!({}));
        assert_eq!(prune(json!({"volumes": null})), json!({"volumes": null}));
    }

    /// A number keeps its value through decoding and encoding again, so a
    /// port the engine reports (or a fuzzer re-encodes) is the one sent.
    /// serde_json's default float parsing is off by an ulp on some inputs:
    /// `9e91` read back as `9.000000000000001e91` (found by the
    /// review_decode fuzz target); the workspace enables `float_roundtrip`.
    #[test]
    fn numbers_survive_a_round_trip_exactly() {
        for text in [
            "9e91",
            "90e90",
            "1e23",
            "8.589973e9",
            "0.1",
            "2.2250738585072014e-308",
        ] {
            let sent: f64 = text.parse().unwrap();
            let body = format!(
                r#"{{"containers":[{{"name":"web","ports":[{{"containerPort":{text}}}]}}]}}"#
            );
            let pruned: PrunedSpec = serde_json::from_str(&body).unwrap();
            let port = &pruned.0["containers"][0]["ports"][0]["containerPort"];
            assert_eq!(port.as_f64(), Some(sent), "{text} decoded as {port}");
            let again: Value = serde_json::from_str(&port.to_string()).unwrap();
            assert_eq!(&again, port, "{text} re-encoded as {port}");
        }
    }
}
