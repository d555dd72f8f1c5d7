"""The docs: the reference pages match the code that generates them, the site builds with no warning (MkDocs
--strict: every link and anchor between pages resolves), and the README stays short with links that resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from docs.gen_reference import PAGES, REFERENCE, stale

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def test_the_generated_reference_pages_match_the_code() -> None:
    assert stale() == [], "run `make docs` (python -m docs.gen_reference) and commit docs/reference/"
    assert sorted(p.name for p in REFERENCE.glob("*.md")) == sorted(PAGES)


def test_the_reference_pages_name_every_config_key_and_command() -> None:
    from docs.gen_reference import config_rows
    from flows.commands import COMMANDS
    from flows.settings import RunConfig

    config = (REFERENCE / "config.md").read_text()
    rows = list(config_rows(RunConfig))
    assert all(f"| `{key}` |" in config for key, *_ in rows)
    assert all(description for *_, description in rows), [key for key, *_, d in rows if not d]  # each key said
    cli = (REFERENCE / "cli.md").read_text()
    assert all(f"## `stj {name}`" in cli for name in COMMANDS)


def test_the_site_builds_with_no_warning(tmp_path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr
    assert not re.search(r"WARNING|warning", built.stderr + built.stdout), built.stderr
    assert (tmp_path / "site" / "reference" / "config.html").exists()


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 10_240
    for target in LINK.findall(readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = REPO / path
        assert file.exists(), target
        if anchor:
            headings = re.findall(r"(?m)^#+ (.+)$", file.read_text())
            assert anchor in {_slug(h) for h in headings}, target
