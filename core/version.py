"""Which code ran: the package's version and its git commit, for every MLflow run's tags.

From a git checkout the commit is read live (``git rev-parse``); an installed package (a wheel, a
non-editable ``pip install``, a deployment's image) has no ``.git``, so the build bakes the commit in beside this
module (``_commit.txt``, written by ``setup.py``'s build step) and it is read from there.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

COMMIT_FILE = "_commit.txt"
HERE = Path(__file__).parent


def code_version(package_dir: Path = HERE) -> str:
    """The short git commit of the code in ``package_dir``: live from git, else the one baked in at build time,
    else ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=package_dir
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    baked = package_dir / COMMIT_FILE
    return baked.read_text().strip() if baked.is_file() else "unknown"


def package_version() -> str:
    """The installed ``stj`` package's version (``unknown`` when run from sources that were never installed)."""
    try:
        return version("stj")
    except PackageNotFoundError:
        return "unknown"
