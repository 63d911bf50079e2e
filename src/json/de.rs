//! A read tree as a serde `Deserializer`, for the settings' types: `validate` reads the
//! payload's settings from the tree the payload was read into, not from their text a
//! second time, and `validate_settings` reads its payload the same way. Values reach
//! the visitors as serde_json gives them from text (numbers as `u64`, else `i64`, else
//! `f64`; strings; unit-variant enums by name), and messages are serde_json's, placed
//! where serde_json places them (a test compares the two on settings documents). A key
//! given twice is its last value, as the tree keeps it.

use super::{Json, Kind};
use crate::problem::cut;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Why a tree did not read: serde's message and, when known, the offset in the text
/// just past the value or key that failed (as serde_json places its errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub at: Option<usize>,
}

impl Failure {
    /// The message, cut as free text, with its line and column in `text` when known
    /// (serde_json's: those of the last byte that failed).
    pub fn describe(&self, text: &str) -> String {
        let message = cut(&self.message);
        match self.at.and_then(|at| text.get(..at)) {
            Some(before) => {
                let line = 1 + before.bytes().filter(|b| *b == b'\n').count();
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
                format!("{message} at line {line} column {column}")
            }
            None => message,
        }
    }
}

/// serde_json's error (its messages), with the address just past the text that failed.
#[derive(Debug)]
pub struct Error {
    serde: serde_json::Error,
    end: Option<usize>,
}

impl Error {
    /// Placed at the end of `text`, unless a value inside it already placed it.
    fn at(self, text: &str) -> Self {
        self.at_address(text.as_ptr() as usize + text.len())
    }

    fn at_address(mut self, end: usize) -> Self {
        self.end.get_or_insert(end);
        self
    }

    /// The failure, its place an offset in `text` (which holds the tree's text).
    pub fn within(self, text: &str) -> Failure {
        let start = text.as_ptr() as usize;
        Failure {
            message: self.serde.to_string(),
            at: self
                .end
                .and_then(|end| end.checked_sub(start))
                .filter(|at| *at <= text.len()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.serde.fmt(f)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error {
            serde: serde_json::Error::custom(message),
            end: None,
        }
    }

    /// serde_json's wording (`null`, not `unit value`).
    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Error {
            serde: serde_json::Error::invalid_type(unexpected, expected),
            end: None,
        }
    }
}

impl<'de> Deserializer<'de> for &Json<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let read = match &self.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Number(n) => number(n, visitor),
            Kind::String(s) => visitor.visit_str(s),
            Kind::Array(items) => visitor.visit_seq(Items(items.iter())),
            Kind::Object(entries, _) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
            // Only what the policy made: never in a tree read from a payload.
            Kind::Made(_) | Kind::Rendered(_) => Err(de::Error::custom("a value the policy made")),
        };
        read.map_err(|e| e.at(self.place()))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.kind {
            Kind::Object(..) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    /// Unit variants by name, the only enums the settings have.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.kind {
            Kind::String(s) => visitor
                .visit_enum(s.as_ref().into_deserializer())
                .map_err(|e: Error| e.at(self.text)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct identifier ignored_any
    }
}

impl Json<'_> {
    /// serde_json's error for this node where `expected` is wanted.
    fn invalid_type(&self, expected: &dyn de::Expected) -> Error {
        let unexpected = match &self.kind {
            Kind::Null => de::Unexpected::Unit,
            Kind::Bool(b) => de::Unexpected::Bool(*b),
            Kind::Number(n) => Number::of(n).map_or(de::Unexpected::Float(0.0), |n| match n {
                Number::Unsigned(u) => de::Unexpected::Unsigned(u),
                Number::Signed(i) => de::Unexpected::Signed(i),
                Number::Float(f) => de::Unexpected::Float(f),
            }),
            Kind::String(s) => de::Unexpected::Str(s),
            Kind::Array(_) => de::Unexpected::Seq,
            Kind::Object(..) | Kind::Made(_) | Kind::Rendered(_) => de::Unexpected::Map,
        };
        <Error as de::Error>::invalid_type(unexpected, expected).at(self.place())
    }

    /// Where serde_json places an error about this node: after a scalar, before an
    /// array or object (errors inside them are placed there).
    fn place(&self) -> &str {
        match self.kind {
            Kind::Array(_) | Kind::Object(..) => self.text.get(..0).unwrap_or_default(),
            _ => self.text,
        }
    }
}

/// A number as serde_json reads its text: an unsigned integer, else a signed one (not
/// `-0`, a float to serde_json), else a float. The reader refused numbers out of
/// `f64`'s range.
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    fn of(text: &str) -> Result<Number, std::num::ParseFloatError> {
        if let Ok(n) = text.parse() {
            return Ok(Number::Unsigned(n));
        }
        match super::integer(text) {
            Some(n) => Ok(Number::Signed(n)),
            None => text.parse().map(Number::Float),
        }
    }
}

fn number<'de, V: Visitor<'de>>(text: &str, visitor: V) -> Result<V::Value, Error> {
    match Number::of(text).map_err(de::Error::custom)? {
        Number::Unsigned(n) => visitor.visit_u64(n),
        Number::Signed(n) => visitor.visit_i64(n),
        Number::Float(n) => visitor.visit_f64(n),
    }
}

struct Items<'n, 'a>(std::slice::Iter<'n, Json<'a>>);

impl<'de> de::SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|item| seed.deserialize(item)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'n, 'a> {
    entries: std::slice::Iter<'n, (Cow<'a, str>, Json<'a>)>,
    /// The value of the key last read.
    value: Option<&'n Json<'a>>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let read = seed.deserialize(key.as_ref().into_deserializer());
        match key {
            // An unknown field is placed at the key's closing quote, as serde_json
            // places it, when the key lies in the text.
            Cow::Borrowed(text) => read
                .map(Some)
                .map_err(|e: Error| e.at_address(text.as_ptr() as usize + text.len() + 1)),
            Cow::Owned(_) => read.map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("a value before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A message that quotes a huge value is cut, and keeps its place.
    #[test]
    fn a_failure_is_cut_and_keeps_its_place() {
        let text = format!("[\"{}\"]", "x".repeat(300_000));
        let tree = Json::parse(&text).unwrap();
        let failure = Vec::<u32>::deserialize(&tree).unwrap_err().within(&text);
        let message = failure.describe(&text);
        assert!(message.len() < 700, "{message}");
        assert!(
            message.ends_with("…(300037 bytes) at line 1 column 300003"),
            "{message}"
        );
    }
}
