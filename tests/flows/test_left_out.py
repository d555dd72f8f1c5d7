"""With split.exclude_label_issues, the last run's label issues are left out of the split, except the photos a
reviewer decided about: a relabelled, kept or added photo trains; an excluded one stays out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.label_overrides import OVERRIDE_COLUMNS, write_overrides
from flows.tasks import left_out
from training.labels.label_issues import ISSUE_COLUMNS, issues_path


def test_a_reviewed_label_issue_is_not_left_out(make_config) -> None:
    config = make_config("split.exclude_label_issues=true")
    data = Path(config.project.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    issues = pd.DataFrame([["A", name, f"raw/{name}.jpg", name * 64, "saree", "jeans", "0.1"] for name in "abcd"],
                          columns=ISSUE_COLUMNS)  # fmt: skip
    issues.to_csv(issues_path(data), index=False)
    assert left_out(config) == [f"raw/{name}.jpg" for name in "abcd"]
    decided = [("a" * 64, "relabel", "jeans"), ("b" * 64, "exclude", ""), ("c" * 64, "keep", "")]
    write_overrides(data, pd.DataFrame([(*row, "2026-12-04") for row in decided], columns=OVERRIDE_COLUMNS))
    assert left_out(config) == ["raw/b.jpg", "raw/d.jpg"]
    assert left_out(make_config()) == []  # the option off: nothing left out
