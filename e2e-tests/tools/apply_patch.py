#!/usr/bin/env python3
"""Applies a JSON Patch (RFC 6902) to a JSON document, with the standard library only.

    apply_patch.py DOCUMENT PATCH      prints the patched document (compact JSON)

DOCUMENT and PATCH are file paths ("-" reads standard input). A patch that does not
apply (a missing path, a failed "test", an index out of range) exits with status 1 and
names the operation, as a Kubernetes API server would refuse it.

Used by scripts/demo.sh and by the e2e suite (e2e-tests/helpers.bash): one copy.
"""
import json
import sys


class PatchError(Exception):
    pass


def parse_pointer(pointer):
    """RFC 6901: "" is the whole document; "/a~1b/0" is ["a/b", "0"]."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"{pointer!r} is not a JSON pointer (it must start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def array_index(token, array, allow_end):
    if token == "-" and allow_end:
        return len(array)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    limit = len(array) if allow_end else len(array) - 1
    if index > limit:
        raise PatchError(f"index {index} is out of range (length {len(array)})")
    return index


def resolve(doc, tokens):
    """The value at `tokens`."""
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"member {token!r} does not exist")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[array_index(token, doc, allow_end=False)]
        else:
            raise PatchError(f"cannot descend into {type(doc).__name__} with {token!r}")
    return doc


def strictly_equal(a, b):
    """JSON equality: true is not 1, 1 equals 1.0, object member order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b))
    return a == b


def add(doc, tokens, value):
    if not tokens:
        return value
    parent = resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(array_index(last, parent, allow_end=True), value)
    else:
        raise PatchError(f"cannot add a member to {type(parent).__name__}")
    return doc


def remove(doc, tokens):
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"member {last!r} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(array_index(last, parent, allow_end=False))
    raise PatchError(f"cannot remove from {type(parent).__name__}")


def apply_operation(doc, operation):
    if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
        raise PatchError("an operation needs 'op' and 'path'")
    op = operation["op"]
    path = parse_pointer(operation["path"])
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"{op!r} needs a 'value'")
    if op == "add":
        return add(doc, path, json.loads(json.dumps(operation["value"])))
    if op == "remove":
        remove(doc, path)
        return doc
    if op == "replace":
        resolve(doc, path)  # must exist
        if not path:
            return json.loads(json.dumps(operation["value"]))
        remove(doc, path)
        return add(doc, path, json.loads(json.dumps(operation["value"])))
    if op in ("move", "copy"):
        if "from" not in operation:
            raise PatchError(f"{op!r} needs 'from'")
        source = parse_pointer(operation["from"])
        if op == "move":
            if path[: len(source)] == source and path != source:
                raise PatchError("cannot move a value into one of its children")
            value = remove(doc, source) if path != source else resolve(doc, source)
        else:
            value = json.loads(json.dumps(resolve(doc, source)))
        return add(doc, path, value)
    if op == "test":
        if not strictly_equal(resolve(doc, path), operation["value"]):
            raise PatchError("the tested value differs")
        return doc
    raise PatchError(f"unknown operation {op!r}")


def apply_patch(doc, patch):
    """Returns `doc` with `patch` applied; raises PatchError naming the failed operation."""
    if not isinstance(patch, list):
        raise PatchError("a JSON patch is a list of operations")
    doc = json.loads(json.dumps(doc))
    for number, operation in enumerate(patch):
        try:
            doc = apply_operation(doc, operation)
        except PatchError as e:
            raise PatchError(f"operation {number} {json.dumps(operation)[:200]}: {e}") from None
    return doc


def read_json(path):
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    if len(argv) != 3:
        print("usage: apply_patch.py DOCUMENT PATCH", file=sys.stderr)
        return 2
    try:
        result = apply_patch(read_json(argv[1]), read_json(argv[2]))
    except PatchError as e:
        print(f"apply_patch.py: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
