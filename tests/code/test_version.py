"""Which code ran: a checkout names its live commit; an installed package (no .git) the commit its build baked
in; a built wheel carries it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from core.version import COMMIT_FILE, code_version

REPO = Path(__file__).resolve().parents[2]


def _head(folder: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=folder,
                          check=True).stdout.strip()  # fmt: skip


def test_a_checkout_names_its_live_commit() -> None:
    assert code_version() == _head(REPO)


def test_an_installed_package_names_the_commit_its_build_baked_in(tmp_path) -> None:
    installed = tmp_path / "site-packages" / "core"
    installed.mkdir(parents=True)
    assert code_version(installed) == "unknown"  # no git, nothing baked
    (installed / COMMIT_FILE).write_text("abc1234\n")
    assert code_version(installed) == "abc1234"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # site-packages inside another work tree:
    assert code_version(installed) == "abc1234"  # the baked commit still wins


def test_a_built_wheel_carries_the_commit(tmp_path) -> None:
    clone = tmp_path / "clone"  # built from a clone: a build writes build/ and *.egg-info beside the sources
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path / "dist"), str(clone)], check=True, capture_output=True)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("stj-*.whl")
    with zipfile.ZipFile(wheel) as built:
        assert built.read(f"core/{COMMIT_FILE}").decode().strip() == _head(clone)
