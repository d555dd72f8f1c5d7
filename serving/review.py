"""The admin's review: users' flags, cleanlab's label issues and "none of these" log entries side by side, a
decision per photo, and the export that turns decisions into the next run's label overrides.

What is listed (newest first, each bounded):

- **flags**: users' corrections (``serving.feedback``), with the photo where the user sent it;
- **label issues**: the champion's run's ``label_issues.csv`` (cleanlab, from the training data), the photo read
  from ``project.data_dir`` when this server can see it;
- **none of these**: prediction-log rows the model called out of distribution; a photo only where a user flagged
  that prediction with it (the log never keeps photos).

A decision (``relabel`` to a class, ``exclude``, ``keep``, or ``add`` a flagged upload under a class) is about a
photo, named by its SHA-256; table ``review_decisions`` keeps every one (who, when), the latest per photo
counts. :func:`export_decisions` writes the latest ones to ``<data_dir>/label_overrides.csv``
(``core.label_overrides``) and saves each added upload under ``uploads/`` with its manifest row; the pipeline
calls it at the start of a run. Costs: listing O(limit) rows per list through indexes, plus the latest decision
per photo (O(decisions)); export O(decisions), and O(manifest) when it adds an upload, once per run.

Config keys: ``serve.database_url``, ``project.data_dir``, ``tracking.uri``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from PIL import Image
from sqlalchemy import bindparam, inspect, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from configs.files import atomic_write_bytes
from core.label_overrides import (
    DECISIONS,
    LABELLING,
    UPLOAD_SOURCE,
    overrides_path,
    write_overrides,
)
from core.manifest import ManifestRow, manifest_path, read_manifest, write_manifest
from core.phash import perceptual_hash
from serving.database import Database
from serving.errors import ApiError
from serving.feedback import Feedback
from serving.history import thumbnail_jpeg

SHA256 = re.compile(r"[0-9a-f]{64}")
ISSUES_ARTIFACT = "label_issues.csv"
THUMB_SIDE = 160
UPLOADS = "uploads"  # under the data folder: added uploads' photos
_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_decisions (
    id {id},
    decided_at TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    sha256 TEXT NOT NULL,
    decision TEXT NOT NULL,
    label TEXT
);
CREATE INDEX IF NOT EXISTS review_decisions_sha256 ON review_decisions (sha256, id)
"""


def _latest_decisions(db) -> list[dict]:
    """The latest decision per photo: O(decisions)."""
    query = text(
        "SELECT d.sha256, d.decision, d.label, d.decided_at FROM review_decisions d JOIN "
        "(SELECT sha256, MAX(id) AS id FROM review_decisions GROUP BY sha256) latest ON d.id = latest.id"
    )
    return [dict(row) for row in db.execute(query).mappings()]


class Review:
    """What ``/review`` lists and the decisions it records (the tables ``feedback`` and ``prediction_log`` are
    read; ``review_decisions`` is written)."""

    def __init__(self, feedback: Feedback, data_dir: str | Path, tracking_uri: str) -> None:
        self.feedback, self.database = feedback, feedback.database
        self.data_dir, self.tracking_uri = Path(data_dir), tracking_uri
        self.database.schema(_SCHEMA)
        self._issues: dict[str, pd.DataFrame] = {}  # run id -> its label issues (an artifact never changes)

    def listing(self, model_name: str, version: str | None, limit: int = 100) -> dict:
        """Flags, the served version's label issues and "none of these" entries (each newest or worst first, at
        most ``limit``), and the latest decision per photo they name."""
        with self.database.read() as db:
            flags = [
                dict(row) | {"has_photo": bool(row["has_photo"])}
                for row in db.execute(
                    text(
                        "SELECT id, created_at, prediction_id, model_name, model_version, label, corrected, sha256, "
                        "photo IS NOT NULL AS has_photo FROM feedback ORDER BY id DESC LIMIT :limit"
                    ),
                    {"limit": limit},
                ).mappings()
            ]
            ood = self._ood_entries(db, limit)
            decided = {row["sha256"]: row for row in _latest_decisions(db)}
        issues = self.label_issues(model_name, version).head(limit)
        return {
            "flags": flags,
            "label_issues": [
                {**row, "score": float(row["score"]), "has_photo": self._issue_photo(row["path"]) is not None}
                for row in issues.to_dict("records")
            ],
            "none_of_these": ood,
            "decisions": decided,
        }

    def _ood_entries(self, db, limit: int) -> list[dict]:
        """The newest prediction-log rows called out of distribution, with a flag's photo where one exists."""
        if not inspect(db).has_table("prediction_log"):
            return []
        rows = [
            dict(row)
            for row in db.execute(
                text(
                    "SELECT id, created_at, request_id, position, model_name, model_version, label, confidence, "
                    "ood_score FROM prediction_log WHERE in_distribution = 0 ORDER BY id DESC LIMIT :limit"
                ),
                {"limit": limit},
            ).mappings()
        ]
        ids = [f"{row['request_id']}:{row['position']}" for row in rows]
        flagged = {}
        if ids:
            found = db.execute(
                text(
                    "SELECT prediction_id, sha256 FROM feedback WHERE photo IS NOT NULL AND prediction_id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids},
            )
            flagged = {prediction: sha for prediction, sha in found}
        return [
            {**row, "prediction_id": pid, "sha256": flagged.get(pid), "has_photo": pid in flagged}
            for row, pid in zip(rows, ids, strict=True)
        ]

    def label_issues(self, model_name: str, version: str | None) -> pd.DataFrame:
        """cleanlab's label issues logged by the run of ``model_name`` ``version`` (none: an empty frame)."""
        empty = pd.DataFrame(columns=["path", "sha256", "given_class", "suggested_class", "score"])
        if version is None:
            return empty
        try:
            run_id = MlflowClient(tracking_uri=self.tracking_uri).get_model_version(model_name, version).run_id
        except MlflowException:
            return empty
        if run_id not in self._issues:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=ISSUES_ARTIFACT, tracking_uri=self.tracking_uri
                )
                found = pd.read_csv(local, dtype=str, keep_default_na=False)
            except (MlflowException, OSError):  # a run without k-fold (labels.enabled false) logged none
                found = empty
            self._issues[run_id] = found if "sha256" in found else empty  # older runs did not name the photo
        return self._issues[run_id]

    def _issue_photo(self, relative: str) -> Path | None:
        """A label issue's photo under the data folder, if this server can read it (never outside the folder)."""
        root = self.data_dir.resolve()
        path = (root / relative).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def photo(self, sha256: str, model_name: str, version: str | None) -> bytes | None:
        """A JPEG thumbnail of the photo with this SHA-256: a flag's upload, else a label issue's file."""
        if not SHA256.fullmatch(sha256):
            return None
        data = self.feedback.photo(sha256)
        if data is None:
            issues = self.label_issues(model_name, version)
            paths = issues.loc[issues["sha256"] == sha256, "path"]
            file = self._issue_photo(paths.iloc[0]) if len(paths) else None
            data = file.read_bytes() if file is not None else None
        return thumbnail(data) if data is not None else None

    def decide(self, user_id: int, body: dict, classes: list[str], model_name: str, version: str | None) -> dict:
        """Record a decision ``{"sha256", "decision", "class"}`` about a listed photo; the stored row.

        Raises:
            ApiError: 422 naming the bad field: a SHA-256 not listed (neither flagged nor a label issue), a decision
                not one of :data:`core.label_overrides.DECISIONS`, a class missing or unknown for relabel/add, or
                ``add`` for a photo no user sent.
        """
        sha256, decision, label = body.get("sha256"), body.get("decision"), body.get("class")
        if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
            raise ApiError(422, "bad_sha256", "send 'sha256' as a listed photo's 64 hex digits")
        if decision not in DECISIONS:
            raise ApiError(422, "bad_decision", f"send 'decision' as one of: {', '.join(DECISIONS)}")
        if decision in LABELLING and label not in classes:
            raise ApiError(422, "bad_class", f"'{decision}' needs 'class' as one of: {', '.join(classes)}")
        uploaded = self.feedback.photo(sha256) is not None
        issue = (self.label_issues(model_name, version)["sha256"] == sha256).any()
        if not uploaded and not issue:
            raise ApiError(422, "bad_sha256", "that photo is neither a flagged upload nor a label issue")
        if decision == "add" and not uploaded:
            raise ApiError(422, "bad_decision", "'add' is for a user's flagged upload: relabel a scraped photo")
        row = {
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "user_id": user_id,
            "sha256": sha256,
            "decision": decision,
            "label": label if decision in LABELLING else None,
        }
        with self.database.write() as db:
            columns = ", ".join(row)
            statement = f"INSERT INTO review_decisions ({columns}) VALUES ({', '.join(':' + c for c in row)})"
            db.execute(text(statement), row)
        return {k: v for k, v in row.items() if k != "user_id"}


def thumbnail(data: bytes, side: int = THUMB_SIDE) -> bytes:
    """A JPEG at most ``side`` pixels on its longer edge (as the history keeps them)."""
    with Image.open(io.BytesIO(data)) as image:
        return thumbnail_jpeg(np.asarray(image.convert("RGB")), side)


@dataclass(frozen=True)
class Exported:
    """What :func:`export_decisions` did: the decisions written, the uploads newly added to the manifest."""

    decisions: int
    added: int


def export_review(database_url: str, data_dir: str | Path) -> Exported | None:
    """:func:`export_decisions` from the server's database at ``database_url``; ``Exported(0, 0)`` when it has
    never been made (a SQLite file that does not exist: nothing reviewed), ``None`` when it cannot be read (the
    caller says so; the override file stays as it was)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return Exported(0, 0)
    try:
        database = Database(database_url)
    except SQLAlchemyError:
        return None
    try:
        return export_decisions(database, data_dir)
    except SQLAlchemyError:
        return None
    finally:
        database.close()


def export_decisions(database: Database, data_dir: str | Path) -> Exported:
    """Write the latest decision per photo to ``<data_dir>/label_overrides.csv`` (atomically; the same decisions
    made at the same times give the same bytes) and add each upload decided ``add`` to the data set: its photo
    saved under ``uploads/`` and its manifest row (``source`` ``upload``) written once. An added upload whose
    photo is gone (its author deleted the account, and with it the consent) is withdrawn: its decision left out
    of the file (so its manifest row no longer trains) and its saved photo removed. O(decisions), and
    O(manifest) when there is an upload to add.
    """
    data_dir = Path(data_dir)
    with database.read() as db:
        if not inspect(db).has_table("review_decisions"):
            return Exported(0, 0)
        latest = _latest_decisions(db)
    frame = pd.DataFrame(latest, columns=["sha256", "decision", "label", "decided_at"]).rename(
        columns={"label": "class"}
    )
    frame["class"] = frame["class"].fillna("")
    feedback = Feedback(database)
    adds = frame[frame["decision"] == "add"]
    photos = {sha: feedback.photo(sha) for sha in adds["sha256"]}
    gone = {sha for sha, photo in photos.items() if photo is None}
    for sha in gone:
        (data_dir / UPLOADS / f"{sha}.jpg").unlink(missing_ok=True)
    kept = adds[~adds["sha256"].isin(gone)]
    added = _add_uploads(data_dir, kept, photos) if len(kept) else 0
    frame = frame[~frame["sha256"].isin(gone)]
    if len(frame) or overrides_path(data_dir).exists():
        write_overrides(data_dir, frame)
    return Exported(len(frame), added)


def _add_uploads(data_dir: Path, adds: pd.DataFrame, photos: dict[str, bytes | None]) -> int:
    """Save each added upload's photo and append its manifest row (a photo the manifest already holds, scraped or
    added, is left as it is: its override relabels it). How many were added."""
    manifest_file = manifest_path(data_dir)
    manifest = read_manifest(manifest_file)
    known = set(manifest["sha256"])
    rows = []
    for sha256, label, decided_at in adds[["sha256", "class", "decided_at"]].itertuples(index=False):
        photo = photos[sha256]
        if sha256 in known or photo is None:
            continue
        with Image.open(io.BytesIO(photo)) as image:  # kept as the scraper keeps photos: an RGB JPEG
            width, height = image.width, image.height
        relative = f"{UPLOADS}/{sha256}.jpg"
        atomic_write_bytes(data_dir / relative, photo)
        rows.append(
            ManifestRow(
                label=label,  # as decided now; the override file rules from here on
                query="",
                asin="",
                title="user upload",
                page=0,
                image_url="",
                image_id=f"upload-{sha256[:16]}",
                sha256=sha256,
                width=width,
                height=height,
                path=relative,
                scraped_at=decided_at,
                phash=perceptual_hash(photo),
                source=UPLOAD_SOURCE,
            ).as_record()
        )
    if rows:
        write_manifest(pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True), manifest_file)
    return len(rows)
