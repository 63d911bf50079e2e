//! JSON values built directly. `serde_json::json!` sends every interpolated value
//! through serde's serializer (`to_value`), which copies maps and strings once more.
//! Measured against json! (make bench-count): 2.7k fewer instructions per call (1.2%), 11 KB more module.

use serde_json::{Map, Value};

/// An object with these entries.
pub fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(map(entries))
}

/// The map of an object with these entries.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// An array of strings, moved in.
pub fn strings(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_what_json_would() {
        assert_eq!(
            object([
                ("a", json!(1)),
                ("b", strings(vec!["x".into(), "y".into()]))
            ]),
            json!({"a": 1, "b": ["x", "y"]})
        );
        assert_eq!(object([]), json!({}));
    }
}
