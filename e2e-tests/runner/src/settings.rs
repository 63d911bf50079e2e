//! Policy settings from `--settings-json` or `--settings-path`.
//!
//! As in kwctl, a settings file is read as YAML (which also accepts JSON),
//! `--settings-json` is parsed as JSON, and the result must be an object or
//! null; no settings at all means `{}`.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

pub type PolicySettings = Map<String, Value>;

pub fn settings_from_json(json: &str) -> Result<PolicySettings> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| anyhow!("Cannot parse settings JSON: {e}"))?;
    into_settings(value)
}

pub fn settings_from_file(path: &Path) -> Result<PolicySettings> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("Cannot open settings file {}: {e}", path.display()))?;
    let value: Value = serde_norway::from_str(&text)
        .map_err(|e| anyhow!("Cannot parse settings file {}: {e}", path.display()))?;
    into_settings(value)
}

fn into_settings(value: Value) -> Result<PolicySettings> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(PolicySettings::new()),
        other => bail!("policy settings must be a JSON/YAML object, got: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("policy-runner-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn json_settings_are_parsed() {
        let s = settings_from_json(r#"{"region":"eu-west-1","n":3}"#).unwrap();
        assert_eq!(Value::Object(s), json!({"region": "eu-west-1", "n": 3}));
        assert!(settings_from_json("null").unwrap().is_empty());
    }

    #[test]
    fn yaml_and_json_files_are_parsed() {
        let yaml = write_temp(
            "s.yaml",
            "trustAnchorArn: arn:x\nregion: eu-west-1\nlist: [a, b]\n",
        );
        assert_eq!(
            Value::Object(settings_from_file(&yaml).unwrap()),
            json!({"trustAnchorArn": "arn:x", "region": "eu-west-1", "list": ["a", "b"]})
        );
        let json_file = write_temp("s.json", r#"{"region": "eu-west-1"}"#);
        assert_eq!(
            Value::Object(settings_from_file(&json_file).unwrap()),
            json!({"region": "eu-west-1"})
        );
        let empty = write_temp("empty.yaml", "");
        assert!(settings_from_file(&empty).unwrap().is_empty());
    }

    #[test]
    fn non_objects_and_bad_input_are_refused() {
        assert!(settings_from_json("[1,2]").is_err());
        assert!(settings_from_json("{")
            .unwrap_err()
            .to_string()
            .contains("Cannot parse settings JSON"));
        let scalar = write_temp("scalar.yaml", "just a string\n");
        assert!(settings_from_file(&scalar).is_err());
        let missing = Path::new("/nonexistent/settings.yaml");
        assert!(settings_from_file(missing)
            .unwrap_err()
            .to_string()
            .contains("Cannot open settings file"));
    }
}
