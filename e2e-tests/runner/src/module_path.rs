//! Where the policy module lives: a plain path or a `file://` URI, as kwctl accepts.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// Resolves kwctl's `<uri_or_sha_prefix>` argument to a local file.
///
/// kwctl also pulls `registry://` and `https://` modules and looks up SHA
/// prefixes in its store; this runner has neither, so those are refused with a
/// message saying so rather than being treated as file names.
pub fn local_module_path(uri: &str) -> Result<PathBuf> {
    if let Some(path) = uri.strip_prefix("file://") {
        if path.is_empty() {
            bail!("invalid policy URI {uri:?}: the file:// URI has no path");
        }
        return Ok(PathBuf::from(path));
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        bail!(
            "unsupported policy URI scheme {scheme:?} in {uri:?}: policy-runner only runs \
             local modules, given as a path or a file:// URI"
        );
    }
    Ok(PathBuf::from(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_used_as_given() {
        assert_eq!(
            local_module_path("policy.wasm").unwrap(),
            PathBuf::from("policy.wasm")
        );
        assert_eq!(
            local_module_path("/tmp/policy.wasm").unwrap(),
            PathBuf::from("/tmp/policy.wasm")
        );
    }

    #[test]
    fn file_uris_lose_their_scheme() {
        assert_eq!(
            local_module_path("file:///tmp/policy.wasm").unwrap(),
            PathBuf::from("/tmp/policy.wasm")
        );
        assert_eq!(
            local_module_path("file://policy.wasm").unwrap(),
            PathBuf::from("policy.wasm")
        );
    }

    #[test]
    fn remote_schemes_are_refused() {
        let err = local_module_path("registry://ghcr.io/x/y:v1").unwrap_err();
        assert!(err.to_string().contains("\"registry\""), "{err}");
        assert!(local_module_path("https://example.com/p.wasm").is_err());
        assert!(local_module_path("file://").is_err());
    }
}
