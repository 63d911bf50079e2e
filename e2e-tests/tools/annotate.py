#!/usr/bin/env python3
"""Embeds metadata.yml into a policy module as `kwctl annotate` does, for machines
without kwctl: the metadata as JSON in the module's `io.kubewarden.metadata` custom
section. kwctl and the bundled runner read that section to grant `--allow-context-aware`
access to the resources in `contextAwareResources`.

    annotate.py METADATA_YML MODULE_WASM OUTPUT_WASM

Needs PyYAML (charts/tests/requirements.txt installs it).
"""

import json
import sys

import yaml

SECTION = b"io.kubewarden.metadata"


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def annotated(module: bytes, metadata: dict) -> bytes:
    """The module with `metadata` appended as its io.kubewarden.metadata section."""
    if not module.startswith(b"\0asm"):
        raise ValueError("not a WebAssembly module")
    if SECTION in module:
        raise ValueError("already annotated")
    metadata = {"protocolVersion": "v1", **metadata}
    data = json.dumps(metadata, separators=(",", ":")).encode()
    contents = leb128(len(SECTION)) + SECTION + data
    return module + b"\0" + leb128(len(contents)) + contents


def main(metadata_path: str, module_path: str, output_path: str) -> None:
    with open(metadata_path, encoding="utf-8") as f:
        metadata = yaml.safe_load(f)
    with open(module_path, "rb") as f:
        module = f.read()
    try:
        result = annotated(module, metadata)
    except ValueError as e:
        sys.exit(f"{module_path}: {e}")
    with open(output_path, "wb") as f:
        f.write(result)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
