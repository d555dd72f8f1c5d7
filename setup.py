"""The one build step pyproject.toml cannot say: the git commit baked into built packages (``core/_commit.txt``),
so that an installed STJ (no ``.git``) still names the code that ran (``core.version``)."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCommit(build_py):
    """``build_py``, then the short commit of the sources written into the build (never into the checkout)."""

    def run(self) -> None:
        super().run()
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=Path(__file__).parent,
            )
            commit = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit and not self.dry_run:
            target = Path(self.build_lib) / "core" / "_commit.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(commit + "\n")


setup(cmdclass={"build_py": BuildPyWithCommit})
