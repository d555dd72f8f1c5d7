"""Label overrides: the reviewers' decisions applied to the manifest before the split (relabel, exclude, keep,
add), a digest that changes with what is decided and not with the order it was written in, a bad file named in
one line, and a relabelled photo keeping its side under its new class."""

from __future__ import annotations

import pandas as pd
import pytest

from configs.errors import UserError
from core.label_overrides import (
    NO_OVERRIDES,
    OVERRIDE_COLUMNS,
    apply_overrides,
    overrides_digest,
    overrides_path,
    read_overrides,
    write_overrides,
)
from training.splitting.split import SplitParams, assign_split


def _manifest() -> pd.DataFrame:
    rows = [(f"{label}{i}", label, "scrape") for label in ("saree", "jeans") for i in range(6)]
    rows.append(("up1", "jeans", "upload"))  # an upload added earlier
    frame = pd.DataFrame(rows, columns=["sha256", "class", "source"])
    return frame.assign(path=[f"raw/{sha}.jpg" for sha in frame["sha256"]], conflict=frame["sha256"] == "saree5")


def _overrides(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame([(*row, "2026-12-04T00:00:00") for row in rows], columns=OVERRIDE_COLUMNS)


def test_each_decision_does_what_it_says() -> None:
    decided = _overrides(("saree0", "relabel", "jeans"), ("saree1", "exclude", ""), ("saree2", "keep", ""),
                         ("saree5", "relabel", "saree"), ("up1", "add", "jeans"))  # fmt: skip
    out = apply_overrides(_manifest(), decided).set_index("sha256")
    assert out.loc["saree0", "class"] == "jeans"
    assert "saree1" not in out.index
    assert out.loc["saree2", "class"] == "saree"
    assert out.loc["saree5", "class"] == "saree" and not out.loc["saree5", "conflict"]  # the conflict settled
    assert out.loc["up1", "class"] == "jeans"
    no_longer = apply_overrides(_manifest(), _overrides(("up1", "keep", "")))
    assert "up1" not in set(no_longer["sha256"]) and len(no_longer) == 12  # an upload counts only while added
    manifest = _manifest()
    pd.testing.assert_frame_equal(apply_overrides(manifest, _overrides()), manifest[manifest["source"] == "scrape"])


def test_the_digest_names_what_is_decided() -> None:
    a = _overrides(("saree0", "relabel", "jeans"), ("saree1", "exclude", ""))
    assert overrides_digest(a) == overrides_digest(a.iloc[::-1])
    assert overrides_digest(a) != overrides_digest(
        _overrides(("saree0", "relabel", "saree"), ("saree1", "exclude", ""))
    )
    assert overrides_digest(_overrides()) == NO_OVERRIDES


def test_the_file_round_trips_and_a_bad_one_is_named(tmp_path) -> None:
    decided = _overrides(("b", "exclude", ""), ("a", "relabel", "jeans"))
    write_overrides(tmp_path, decided)
    read = read_overrides(tmp_path)
    assert list(read["sha256"]) == ["a", "b"] and overrides_digest(read) == overrides_digest(decided)
    assert read_overrides(tmp_path / "none").empty
    overrides_path(tmp_path).write_text("sha256,decision,class,decided_at\nabc,rename,jeans,x\n")
    with pytest.raises(UserError, match=r"label_overrides.csv: photo abc: decision 'rename' is not one of"):
        read_overrides(tmp_path)
    overrides_path(tmp_path).write_text("sha,what\n")
    with pytest.raises(UserError, match="not a label-override file"):
        read_overrides(tmp_path)


def test_a_relabelled_photo_keeps_its_side_under_its_new_class() -> None:
    manifest = _manifest()[lambda f: f["source"] == "scrape"].assign(scraped_at="2026-11-01", conflict=False)
    params = SplitParams(test_size=0.34, val_size=0.25, seed=1)
    before = assign_split(manifest, params)
    moved = before[before["class"] == "saree"].iloc[0]
    after = assign_split(apply_overrides(manifest, _overrides((moved["sha256"], "relabel", "jeans"))), params, before)
    row = after.set_index("sha256").loc[moved["sha256"]]
    assert (row["class"], row["split"]) == ("jeans", moved["split"])
    assert after.drop(columns="class").equals(before.drop(columns="class"))  # no other photo moved
