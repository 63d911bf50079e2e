//! The Kubewarden metadata that `kwctl annotate` embeds in a module, read from
//! its `io.kubewarden.metadata` custom section.
//!
//! With `--allow-context-aware`, kwctl grants the policy exactly the Kubernetes
//! resources listed in `contextAwareResources` of that metadata, and nothing
//! when the module is not annotated.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

const METADATA_SECTION: &str = "io.kubewarden.metadata";
const WASM_MAGIC: &[u8] = b"\0asm";
/// Core-module binary version; components use another one.
const WASM_CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const CUSTOM_SECTION_ID: u8 = 0;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextAwareResource {
    pub api_version: String,
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub execution_mode: Option<String>,
    #[serde(default)]
    pub context_aware_resources: BTreeSet<ContextAwareResource>,
}

/// Returns the module's metadata, or `None` if it was never annotated.
pub fn read_metadata(module: &[u8]) -> Result<Option<Metadata>> {
    match find_custom_section(module, METADATA_SECTION)? {
        None => Ok(None),
        Some(data) => serde_json::from_slice(data)
            .map(Some)
            .context("cannot parse the Kubewarden metadata embedded in the module"),
    }
}

fn find_custom_section<'a>(module: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>> {
    let Some(body) = module.strip_prefix(WASM_MAGIC) else {
        bail!("not a WebAssembly binary module (bad magic number)");
    };
    let Some(mut rest) = body.strip_prefix(&WASM_CORE_VERSION[..]) else {
        bail!("unsupported WebAssembly binary version: only core modules can be run");
    };
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = read_leb128_u32(after_id)?;
        let size = size as usize;
        if after_size.len() < size {
            bail!("truncated WebAssembly module: section {id} overruns the file");
        }
        let (contents, next) = after_size.split_at(size);
        if id == CUSTOM_SECTION_ID {
            let (name_len, after_len) = read_leb128_u32(contents)?;
            let name_len = name_len as usize;
            if after_len.len() < name_len {
                bail!("truncated WebAssembly module: custom section name overruns its section");
            }
            let (name, data) = after_len.split_at(name_len);
            if name == wanted.as_bytes() {
                return Ok(Some(data));
            }
        }
        rest = next;
    }
    Ok(None)
}

/// Decodes an unsigned LEB128 `u32`, as used for sizes in the binary format.
fn read_leb128_u32(bytes: &[u8]) -> Result<(u32, &[u8])> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[i + 1..]));
        }
    }
    bail!("malformed WebAssembly module: bad LEB128 size")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn leb128(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// Appends a custom section, as `kwctl annotate` does.
    pub(crate) fn with_custom_section(module: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
        let mut contents = leb128(name.len());
        contents.extend_from_slice(name.as_bytes());
        contents.extend_from_slice(data);
        let mut out = module.to_vec();
        out.push(CUSTOM_SECTION_ID);
        out.extend(leb128(contents.len()));
        out.extend(contents);
        out
    }

    /// The smallest valid module: header plus an empty type section.
    fn empty_module() -> Vec<u8> {
        let mut m = b"\0asm".to_vec();
        m.extend_from_slice(&WASM_CORE_VERSION);
        m.extend_from_slice(&[1, 1, 0]);
        m
    }

    #[test]
    fn unannotated_module_has_no_metadata() {
        let module = with_custom_section(&empty_module(), "name", b"\0\x01x");
        assert_eq!(read_metadata(&module).unwrap(), None);
    }

    #[test]
    fn metadata_is_read_from_its_custom_section() {
        let json = br#"{"protocolVersion":"v1","mutating":true,"executionMode":"kubewarden-wapc",
            "contextAwareResources":[{"apiVersion":"v1","kind":"ServiceAccount"}]}"#;
        // a long payload exercises multi-byte LEB128 sizes
        let padding = vec![b' '; 300];
        let data = [json.as_slice(), &padding].concat();
        let module = with_custom_section(&empty_module(), METADATA_SECTION, &data);
        let metadata = read_metadata(&module).unwrap().unwrap();
        assert_eq!(metadata.execution_mode.as_deref(), Some("kubewarden-wapc"));
        assert_eq!(
            metadata
                .context_aware_resources
                .into_iter()
                .collect::<Vec<_>>(),
            vec![ContextAwareResource {
                api_version: "v1".into(),
                kind: "ServiceAccount".into()
            }]
        );
    }

    #[test]
    fn broken_inputs_are_errors() {
        assert!(read_metadata(b"not wasm").is_err());
        let mut truncated = empty_module();
        truncated.extend_from_slice(&[0, 10, 1]);
        assert!(read_metadata(&truncated).is_err());
        let bad_json = with_custom_section(&empty_module(), METADATA_SECTION, b"{");
        assert!(read_metadata(&bad_json).is_err());
    }
}
