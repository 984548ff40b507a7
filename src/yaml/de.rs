//! A serde `Deserializer` over a loaded [`Node`]: typed values straight from the tree, with
//! every error carrying the position of the key or value it is about (an unknown field at its
//! key, a wrong type at its value, a missing field at its mapping) and the key path to it.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::{Key, Node, NodeValue, Pos};

/// Why a node does not deserialize, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    /// Where in the source; `None` only before it reaches a node.
    pub pos: Option<Pos>,
    /// The JSON pointer of the value it is about (`/secrets/generations/x`).
    pub pointer: String,
}

impl DeError {
    /// The error, placed at `pos` and `pointer` unless a deeper node already placed it.
    fn at(mut self, pos: Pos, pointer: &str) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.pointer = pointer.to_owned();
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
            pointer: String::new(),
        }
    }
}

/// Deserializes `T` from `node`.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        pointer: String::new(),
    })
}

fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
}

struct NodeDe<'a> {
    node: &'a Node,
    pointer: String,
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (pos, pointer) = (self.node.pos, self.pointer.clone());
        let result = match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(b) => visitor.visit_bool(*b),
            NodeValue::Int(i) => visitor.visit_i64(*i),
            NodeValue::Float(f) => visitor.visit_f64(*f),
            NodeValue::Str(s) => visitor.visit_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                pointer: &self.pointer,
            }),
            NodeValue::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
                pointer: &self.pointer,
            }),
        };
        result.map_err(|e| e.at(pos, &pointer))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (pos, pointer) = (self.node.pos, self.pointer.clone());
        let result = match &self.node.value {
            NodeValue::Str(s) => {
                visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(s.as_str()))
            }
            _ => Err(de::Error::invalid_type(unexpected(self.node), &"a string")),
        };
        result.map_err(|e| e.at(pos, &pointer))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.value {
        NodeValue::Null => de::Unexpected::Unit,
        NodeValue::Bool(b) => de::Unexpected::Bool(*b),
        NodeValue::Int(i) => de::Unexpected::Signed(*i),
        NodeValue::Float(f) => de::Unexpected::Float(*f),
        NodeValue::Str(s) => de::Unexpected::Str(s),
        NodeValue::Seq(_) => de::Unexpected::Seq,
        NodeValue::Map(_) => de::Unexpected::Map,
    }
}

struct SeqAccess<'a, I> {
    items: I,
    pointer: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqAccess<'_, I> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let pointer = child(self.pointer, &i.to_string());
                seed.deserialize(NodeDe {
                    node,
                    pointer: pointer.clone(),
                })
                .map(Some)
                .map_err(|e| e.at(node.pos, &pointer))
            }
        }
    }
}

struct MapAccess<'a, 'p, I> {
    entries: I,
    value: Option<(&'a Node, String)>,
    pointer: &'p str,
}

impl<'de, 'a, I: Iterator<Item = &'a (Key, Node)>> de::MapAccess<'de> for MapAccess<'a, '_, I> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        let pointer = child(self.pointer, &key.name);
        let k = seed
            .deserialize(IntoDeserializer::<DeError>::into_deserializer(
                key.name.as_str(),
            ))
            .map_err(|e| e.at(key.pos, self.pointer))?;
        self.value = Some((node, pointer));
        Ok(Some(k))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let Some((node, pointer)) = self.value.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        seed.deserialize(NodeDe {
            node,
            pointer: pointer.clone(),
        })
        .map_err(|e| e.at(node.pos, &pointer))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::yaml::parse_document;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Conf {
        name: String,
        #[serde(default)]
        counts: BTreeMap<String, u32>,
        mode: Option<Mode>,
        list: Option<Vec<u8>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        InCluster,
    }

    fn err(src: &str) -> DeError {
        from_node::<Conf>(&parse_document(src).unwrap()).unwrap_err()
    }

    #[test]
    fn values_deserialize() {
        let c: Conf = from_node(
            &parse_document("name: x\ncounts: {a: 2}\nmode: in-cluster\nlist: [1]\n").unwrap(),
        )
        .unwrap();
        assert_eq!(c.counts["a"], 2);
        assert_eq!(c.mode, Some(Mode::InCluster));
        assert_eq!(c.list, Some(vec![1]));
    }

    #[test]
    fn errors_point_at_the_key_or_value_they_are_about() {
        let e = err("name: x\nbogus: 1\n");
        assert_eq!(e.pos, Some(Pos { line: 2, col: 1 }));
        assert_eq!(e.pointer, "", "an unknown key is about its mapping");
        assert!(e.message.contains("unknown field `bogus`"), "{}", e.message);
        let e = err("name: x\ncounts:\n  a: -1\n");
        assert_eq!(e.pos, Some(Pos { line: 3, col: 6 }));
        assert_eq!(e.pointer, "/counts/a");
        let e = err("counts: {}\n");
        assert_eq!(e.pos, Some(Pos { line: 1, col: 1 }));
        assert!(e.message.contains("missing field `name`"), "{}", e.message);
        let e = err("name: x\nmode: nope\n");
        assert_eq!(e.pos, Some(Pos { line: 2, col: 7 }));
        let e = err("name: x\nlist: [1, 300]\n");
        assert_eq!(e.pos, Some(Pos { line: 2, col: 11 }));
        assert_eq!(e.pointer, "/list/1");
    }
}
