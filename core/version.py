"""Which code ran: the package's version and its git commit, for every MLflow run's tags.

An installed package (a wheel, a non-editable ``pip install``, a deployment's image) has no ``.git`` of its own,
so the build bakes the commit in beside this module (``_commit.txt``, written by ``setup.py``'s build step) and
it is read from there; a checkout (or an editable install of one) has no such file and reads git live.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

COMMIT_FILE = "_commit.txt"
HERE = Path(__file__).parent


def code_version(package_dir: Path = HERE) -> str:
    """The short git commit of the code in ``package_dir``: the one its build baked in (an installed package,
    even one whose site-packages lies inside some other git work tree), else live from git (a checkout), else
    ``unknown``."""
    baked = package_dir / COMMIT_FILE
    if baked.is_file():
        return baked.read_text().strip()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=package_dir
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def package_version() -> str:
    """The installed ``stj`` package's version (``unknown`` when run from sources that were never installed)."""
    try:
        return version("stj")
    except PackageNotFoundError:
        return "unknown"
