//! Duplicate keys in flow JSON. serde_json keeps the last of two equal
//! keys; in a flow that silently drops a node (or a menu option) an admin
//! copied and forgot to rename, so [`Flow::parse`](crate::Flow::parse)
//! rejects them.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::FlowError;

/// Fails on the first object, at any depth, that has a key twice.
pub(super) fn check(json: &str) -> Result<(), FlowError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    Unique {
        path: String::new(),
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|error| FlowError::flow(None, format!("invalid JSON: {error}")))
}

/// Walks one JSON value at `path` (`nodes.menu.options`; empty at the top).
struct Unique {
    path: String,
}

impl Unique {
    fn child(&self, key: &str) -> Unique {
        Unique {
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }

    fn element(&self, index: usize) -> Unique {
        Unique {
            path: format!("{}[{index}]", self.path),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                let place = if self.path.is_empty() {
                    "the flow".to_owned()
                } else {
                    format!("{:?}", self.path)
                };
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?} in {place}"
                )));
            }
            map.next_value_seed(self.child(&key))?;
            seen.insert(key);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq.next_element_seed(self.element(index))?.is_some() {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}
