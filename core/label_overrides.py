"""The label-override file: reviewers' decisions that the next split applies to the manifest.

An admin's decisions on the server's ``/review`` page (``serving.review``) are exported by the pipeline, at the
start of each run, to ``<data_dir>/label_overrides.csv``: one row per photo (matched by SHA-256, the same
bytes), its latest decision. The split (``training.splitting.split.plan_split``) applies the file to the
manifest before grouping, so a run is reproducible from manifest + overrides; each run logs the file and its
:func:`overrides_digest` as part of its dataset version.

Decisions:

- ``relabel`` to a class: every manifest row with that SHA-256 trains under the class (a conflict, a photo
  listed under two classes, is settled by it).
- ``exclude``: the photo is left out.
- ``keep``: recorded (the photo was looked at and is right), changes nothing.
- ``add`` under a class: a user's flagged upload joins the data set. The export saves the photo under
  ``uploads/`` and appends its manifest row (``source`` ``upload``); such a row is used only while its latest
  decision is ``add`` or ``relabel``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from configs.errors import UserError
from configs.files import atomic_write_text
from core.manifest import manifest_path, read_manifest

OVERRIDES_NAME = "label_overrides.csv"
OVERRIDE_COLUMNS = ["sha256", "decision", "class", "decided_at"]
DECISIONS = ("relabel", "exclude", "keep", "add")
LABELLING = {"relabel", "add"}  # the decisions that name a class
UPLOAD_SOURCE = "upload"  # the manifest's ``source`` of an added upload
NO_OVERRIDES = "none"  # the digest of an empty file (or none)


def overrides_path(data_dir: str | Path) -> Path:
    """Where the label-override file lives under a data folder."""
    return Path(data_dir) / OVERRIDES_NAME


def read_overrides(data_dir: str | Path) -> pd.DataFrame:
    """The label overrides under ``data_dir`` (no file: none), one row per SHA-256.

    Raises:
        UserError: the file names a decision that is not one of :data:`DECISIONS`, or lacks a class for one
            that needs it.
    """
    file = overrides_path(data_dir)
    if not file.exists():
        return pd.DataFrame(columns=OVERRIDE_COLUMNS)
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    if missing := set(OVERRIDE_COLUMNS) - set(frame.columns):
        raise UserError(f"{file}: not a label-override file (missing columns {sorted(missing)})")
    bad = frame[~frame["decision"].isin(DECISIONS) | (frame["decision"].isin(LABELLING) & (frame["class"] == ""))]
    if not bad.empty:
        row = bad.iloc[0]
        raise UserError(
            f"{file}: photo {row['sha256']}: decision {row['decision']!r} is not one of {', '.join(DECISIONS)}, "
            "or names no class"
        )
    return frame[OVERRIDE_COLUMNS].drop_duplicates("sha256", keep="last").reset_index(drop=True)


def write_overrides(data_dir: str | Path, overrides: pd.DataFrame) -> Path:
    """Write the overrides atomically, sorted by SHA-256 (the same rows give the same bytes, whatever their order)."""
    frame = overrides[OVERRIDE_COLUMNS].sort_values("sha256", kind="stable")
    return atomic_write_text(overrides_path(data_dir), frame.to_csv(index=False))


def overrides_digest(overrides: pd.DataFrame) -> str:
    """A short digest of what the overrides decide (SHA-256, decision, class; not who or when), independent of
    row order: part of a run's dataset version. :data:`NO_OVERRIDES` for none."""
    if overrides.empty:
        return NO_OVERRIDES
    rows = overrides[["sha256", "decision", "class"]].itertuples(index=False)
    lines = sorted(f"{sha},{decision},{label if decision in LABELLING else ''}" for sha, decision, label in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def apply_overrides(manifest: pd.DataFrame, overrides: pd.DataFrame) -> pd.DataFrame:
    """The manifest as the reviewers decided: relabelled and added photos under their class (conflict settled),
    excluded ones and uploads not (or no longer) added left out. O(rows + overrides).

    Args:
        manifest: rows as ``core.manifest.read_manifest`` returns them (``sha256``, ``class``, ``conflict``,
            ``source``).
        overrides: as :func:`read_overrides` returns them.
    """
    decided = dict(zip(overrides["sha256"], zip(overrides["decision"], overrides["class"], strict=True), strict=True))
    decision = manifest["sha256"].map(lambda sha: decided.get(sha, ("", ""))[0])
    labelled = decision.isin(LABELLING)
    upload = manifest["source"] == UPLOAD_SOURCE
    out = manifest[(decision != "exclude") & (~upload | labelled)].copy()
    relabel = labelled[out.index]
    out.loc[relabel, "class"] = out.loc[relabel, "sha256"].map(lambda sha: decided[sha][1])
    out.loc[relabel, "conflict"] = False
    return out


def reviewed_manifest(data_dir: str | Path) -> pd.DataFrame:
    """The manifest under ``data_dir`` with its label overrides applied (:func:`apply_overrides`)."""
    return apply_overrides(read_manifest(manifest_path(data_dir)), read_overrides(data_dir))
