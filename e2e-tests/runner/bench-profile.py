"""Names the instructions of callgrind profiles by the module's functions.

Usage: bench-profile.py FEW_PROFILE FEW_SYMBOLS MANY_PROFILE MANY_SYMBOLS REQUESTS [ROWS]

The two profiles are callgrind's of one `policy-perf count` process each, MANY_PROFILE
serving REQUESTS more requests than FEW_PROFILE; the symbols are what each run wrote
with `--symbols` (where the compiled functions lie in that process, which moves from run
to run). Callgrind sees the compiled module's code only as addresses; each is named by
the function whose code holds it. Prints, per request (the difference over REQUESTS),
the module's functions above the noise as a Markdown table, the top ROWS (30), then
the totals of the module's code and of the rest of the process (wasmtime, the runner,
libc), by object.
"""

import bisect
import re
import shutil
import subprocess
import sys

# A callgrind_annotate line: its cost, then "file:function [object]".
LINE = re.compile(r"\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?: \[(.*)\])?$")
# An address callgrind has no name for; 'N marks a recursive call's cycle.
ADDRESS = re.compile(r"\?\?\?:0x([0-9a-f]+)(?:'\d+)?$")


def symbols(path):
    """(starts, ends, names) of the functions in a --symbols file, by start."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            start, length, name = line.rstrip("\n").split(" ", 2)
            rows.append((int(start, 16), int(length, 16), name))
    rows.sort()
    return [r[0] for r in rows], [r[0] + r[1] for r in rows], [r[2] for r in rows]


def costs(profile, symbol_file):
    """Self cost by name: the module's functions as "wasm NAME", the rest by object."""
    starts, ends, names = symbols(symbol_file)
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", profile],
        capture_output=True, text=True, check=True,
    ).stdout
    total = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or m.group(2) == "PROGRAM TOTALS":
            continue
        cost = int(m.group(1).replace(",", ""))
        function, obj = m.group(2), m.group(3) or "???"
        key = "other: " + obj
        a = ADDRESS.match(function)
        if a:
            at = int(a.group(1), 16)
            i = bisect.bisect_right(starts, at) - 1
            if i >= 0 and at < ends[i]:
                key = "wasm " + names[i]
        elif obj == "???":
            key = "other: " + function
        total[key] = total.get(key, 0) + cost
    return total


def demangled(names):
    """The names as Rust writes them, when binutils' c++filt is there."""
    if not shutil.which("c++filt"):
        return names
    out = subprocess.run(
        ["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return [re.sub(r"::h[0-9a-f]{16}$", "", n) for n in out]


def main():
    few, few_symbols, many, many_symbols, requests = sys.argv[1:6]
    rows = int(sys.argv[6]) if len(sys.argv) > 6 else 30
    requests = int(requests)
    a, b = costs(few, few_symbols), costs(many, many_symbols)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / requests for k in set(a) | set(b)}
    wasm = sorted(
        ((v, k[len("wasm "):]) for k, v in per.items() if k.startswith("wasm ")),
        reverse=True,
    )
    shown = wasm[:rows]
    print("| instructions per request | function of the module |")
    print("|---|---|")
    for (v, _), name in zip(shown, demangled([n for _, n in shown])):
        print(f"| {v:,.0f} | `{name}` |")
    in_wasm = sum(v for v, _ in wasm)
    others = sorted(((v, k) for k, v in per.items() if not k.startswith("wasm ")), reverse=True)
    print()
    print(f"the module's code: {in_wasm:,.0f} instructions per request, in {len(wasm)} functions")
    print(f"the rest of the process: {sum(v for v, _ in others):,.0f}, of which:")
    for v, k in others[:5]:
        print(f"  {v:,.0f}  {k}")


if __name__ == "__main__":
    main()
