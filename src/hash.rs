//! A stable, dependency-free hash for the config-hash annotation.

#[cfg(test)]
use serde_json::{Map, Value};

/// A stable, dependency-free hash that takes eight bytes per step (FxHash's mixing):
/// a change marker, not a security check.
#[derive(Debug, Clone, Copy)]
pub struct Hasher(pub u64);

impl Hasher {
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// The hash as 16 lowercase hex digits, as `format!("{:016x}")` writes it.
    pub fn hex(&self) -> String {
        (0..16)
            .rev()
            .map(|i| char::from(b"0123456789abcdef"[(self.0 >> (4 * i)) as usize & 0xf]))
            .collect()
    }

    /// A string, length first, so that no two sequences of strings feed the same words.
    pub fn text(&mut self, s: &str) {
        self.word(s.len() as u64);
        let mut chunks = s.as_bytes().chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.word(crate::json::word(rest, 0));
        }
    }

    /// A value by type tag and contents, without serialising it: what `emit`'s
    /// hashing sink feeds, kept as its tests' oracle.
    #[cfg(test)]
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.word(0),
            Value::Bool(b) => self.word(1 + u64::from(*b)),
            Value::Number(n) => {
                self.word(3);
                self.text(&n.to_string());
            }
            Value::String(s) => {
                self.word(4);
                self.text(s);
            }
            Value::Array(items) => {
                self.word(5);
                self.word(items.len() as u64);
                items.iter().for_each(|i| self.value(i));
            }
            Value::Object(map) => self.map(map),
        }
    }

    #[cfg(test)]
    pub fn map(&mut self, map: &Map<String, Value>) {
        self.word(6);
        self.word(map.len() as u64);
        for (k, v) in map {
            self.text(k);
            self.value(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_what_format_writes() {
        for h in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(Hasher(h).hex(), format!("{h:016x}"));
        }
    }
}
