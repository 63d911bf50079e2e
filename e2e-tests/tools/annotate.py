#!/usr/bin/env python3
"""Embeds metadata.yml into a policy module as `kwctl annotate` does, for machines
without kwctl: the metadata as JSON in the module's `io.kubewarden.metadata` custom
section, with kwctl's defaults filled in and, with `-u README.md`, the README as the
`io.kubewarden.policy.usage` annotation. kwctl and the bundled runner read that section to
grant `--allow-context-aware` access to the resources in `contextAwareResources`.

kwctl also re-encodes the module's code and records its own version
(`io.kubewarden.kwctl`); this tool leaves the code as built, so the two results run the
same and carry the same metadata but are not byte-identical.

    annotate.py METADATA_YML MODULE_WASM OUTPUT_WASM [-u USAGE_MD]

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


# kwctl's defaults for fields metadata.yml may leave out (policy-evaluator's Metadata).
DEFAULTS = {"backgroundAudit": True, "executionMode": "kubewarden-wapc",
            "policyType": "kubernetes", "contextAwareResources": []}


def annotated(module: bytes, metadata: dict, usage: str | None = None) -> bytes:
    """The module with `metadata` appended as its io.kubewarden.metadata section."""
    if not module.startswith(b"\0asm"):
        raise ValueError("not a WebAssembly module")
    if SECTION in module:
        raise ValueError("already annotated")
    metadata = {"protocolVersion": "v1", **DEFAULTS, **metadata}
    if usage is not None:
        metadata["annotations"] = {**(metadata.get("annotations") or {}),
                                   "io.kubewarden.policy.usage": usage}
    data = json.dumps(metadata, separators=(",", ":")).encode()
    contents = leb128(len(SECTION)) + SECTION + data
    return module + b"\0" + leb128(len(contents)) + contents


def main(metadata_path: str, module_path: str, output_path: str,
         usage_path: str | None = None) -> None:
    with open(metadata_path, encoding="utf-8") as f:
        metadata = yaml.safe_load(f)
    with open(module_path, "rb") as f:
        module = f.read()
    usage = None
    if usage_path is not None:
        with open(usage_path, encoding="utf-8") as f:
            usage = f.read()
    try:
        result = annotated(module, metadata, usage)
    except ValueError as e:
        sys.exit(f"{module_path}: {e}")
    with open(output_path, "wb") as f:
        f.write(result)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 5 and args[3] == "-u":
        main(*args[:3], usage_path=args[4])
    elif len(args) == 3:
        main(*args)
    else:
        sys.exit(__doc__)
