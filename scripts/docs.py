#!/usr/bin/env python3
"""The generated tables of the docs: each chart's values table (helm-docs, from the `# --`
comments of its values.yaml) in its README.md and, for the bundle chart, in
docs/reference.md, beside the policy's settings table (from charts/tests/policy-settings.json,
the defaults the policy's own test writes, described by the values they come from).

    scripts/docs.py          rewrite the tables between their <!-- NAME:start/end --> markers
    scripts/docs.py --check  exit 1, naming each stale table, when a rewrite would change a file

helm-docs is built from the Go module proxy by scripts/go-tools.sh helm-docs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHARTS = REPO / "charts"
POLICY_CHART = CHARTS / "iamra-sidecar-policy"
TEMPLATE = "values-table.gotmpl"  # in each chart, ignored by .helmignore

# Settings the chart sets from other values: not in values.yaml under the same name.
SETTING_NOTES = {
    "mode": "`inject` or `guard`: set by the chart per policy.",
    "certificate.issuer": "The issuer that signs the pods' certificates (`name`, `kind`, `group`): "
                          "set by the chart from `workloadIssuer`.",
    "sidecar.image": "Credential-helper image reference: set by the chart from `sidecar.image` "
                     "(registry, repository, tag).",
}


def helm_docs() -> Path:
    out = subprocess.run([str(REPO / "scripts" / "go-tools.sh"), "helm-docs"], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip()) / "helm-docs"


def escape(row: str) -> str:
    """A table row whose description (the last cell) shows <placeholders> as text, not as
    HTML tags."""
    head, sep, last = row.rstrip().removesuffix(" |").rpartition(" | ")
    if not sep or not any(c in last for c in "<>"):
        return row
    return f"{head} | {last.replace('<', '&lt;').replace('>', '&gt;')} |"


def absent_keys(values: str) -> list[str]:
    """Rows for top-level values documented but left unset on purpose
    (`# key -- (type) description` above a commented-out `# key: example`)."""
    rows = []
    for m in re.finditer(r"^# (\w+) -- \((\w+)\) (.*?)\n(?=# \1: )", values, re.M | re.S):
        text = " ".join(line.removeprefix("#").strip() for line in m[3].splitlines())
        rows.append(escape(f"| {m[1]} | {m[2]} | *(required, no default)* | {text} |"))
    return rows


def values_table(tool: Path, chart: Path) -> str:
    done = subprocess.run(
        [str(tool), "--chart-search-root", str(CHARTS), "--chart-to-generate", str(chart),
         "--template-files", TEMPLATE, "--sort-values-order", "file", "--dry-run", "--log-level", "error"],
        check=True, capture_output=True, text=True)
    lines = [escape(line) for line in done.stdout.strip().splitlines()]
    assert lines[:2] == ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"], lines[:2]
    return "\n".join(lines[:2] + absent_keys((chart / "values.yaml").read_text()) + lines[2:])


def rows(table: str) -> dict[str, tuple[str, str]]:
    out = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        out[cells[0]] = (cells[1], cells[-1])
    return out


def settings(defaults: dict, prefix: str = ""):
    for key, value in defaults.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("resources", "issuer"):
            yield from settings(value, path + ".")
        else:
            yield path, value


def settings_table(values: str) -> str:
    described = rows(values)
    defaults = json.loads((CHARTS / "tests" / "policy-settings.json").read_text())
    out = ["| Setting | Default | Description |", "|---------|---------|-------------|"]
    for path, default in settings(defaults):
        if path in SETTING_NOTES:
            text = SETTING_NOTES[path]
        elif path in described:
            text = described[path][1]
        else:
            raise SystemExit(f"scripts/docs.py: setting {path} has no value of the same name in values.yaml")
        shown = "*(required)*" if path in ("trustAnchorArn", "region") else f"`{json.dumps(default)}`"
        out.append(f"| {path} | {shown} | {text} |")
    return "\n".join(out)


def splice(text: str, name: str, table: str, path: Path) -> str:
    start, end = f"<!-- {name}:start (scripts/docs.py writes this table) -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"scripts/docs.py: {path.relative_to(REPO)} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"


def main() -> int:
    check = "--check" in sys.argv[1:]
    tool = helm_docs()
    tables = {chart: values_table(tool, chart) for chart in sorted(CHARTS.glob("*/Chart.yaml"))
              for chart in [chart.parent]}
    wanted = {chart / "README.md": [("values-table", tables[chart])] for chart in tables}
    wanted[REPO / "docs" / "reference.md"] = [("values-table", tables[POLICY_CHART]),
                                              ("settings-table", settings_table(tables[POLICY_CHART]))]
    stale = []
    for path, parts in wanted.items():
        text = path.read_text()
        new = text
        for name, table in parts:
            new = splice(new, name, table, path)
        if new != text:
            stale.append(str(path.relative_to(REPO)))
            if not check:
                path.write_text(new)
    if check and stale:
        print("stale generated tables (run scripts/docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
