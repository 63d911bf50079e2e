"""Fixtures of the release tests: the repository's scripts, Kubewarden's kwctl where it is
installed (skipped, saying so, where not), a copy of the versioned files to edit, and
`make dist` run once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import release  # noqa: E402

KWCTL_ENV = {**os.environ, "RUST_BACKTRACE": "0"}


@pytest.fixture(scope="session")
def kwctl() -> str:
    """Kubewarden's kwctl from PATH (the Makefile adds ../shared/bin when present)."""
    path = shutil.which("kwctl")
    if path is None:
        pytest.skip("kwctl not on PATH (../shared/bin or an install): "
                    "this test needs Kubewarden's own kwctl")
    return path


@pytest.fixture(scope="session")
def cosign() -> str | None:
    """cosign as `make publish` finds it (PATH, else built from the Go module proxy); None
    where it cannot be had, the reason printed: the module is then published unsigned and
    the signature tests skip, saying why."""
    import publish
    try:
        return publish.cosign_binary()
    except publish.PublishError as e:
        print(f"\nSKIPPING module signatures: {e}", file=sys.stderr)
        return None


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files that name the version, with scripts/release.py, to edit."""
    copied = {"scripts/release.py", "Cargo.toml", "CHANGELOG.md", "artifacthub-pkg.yml",
              *(path for path, _ in release.PLACES)}
    for chart in release.CHARTS:
        copied.add(f"charts/{chart}/Chart.yaml")
    for name in copied:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path


def run_release(checkout: Path, *args: str, kwctl_on_path: bool = False
                ) -> subprocess.CompletedProcess[str]:
    """scripts/release.py of the copy; without kwctl on PATH unless asked."""
    env = dict(os.environ)
    if not kwctl_on_path:
        env["PATH"] = os.pathsep.join(
            d for d in env["PATH"].split(os.pathsep) if not (Path(d) / "kwctl").exists())
    return subprocess.run([sys.executable, str(checkout / "scripts" / "release.py"), *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="session")
def dist() -> Path:
    """`scripts/dist.sh` (make dist without its build and install steps: make test has
    done them) into the repository's dist/."""
    done = subprocess.run([str(REPO / "scripts" / "dist.sh")], capture_output=True, text=True,
                          env=KWCTL_ENV)
    assert done.returncode == 0, f"make dist failed:\n{done.stdout}\n{done.stderr}"
    return REPO / "dist"
