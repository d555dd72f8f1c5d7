"""The run summary the Prefect UI shows: the gate's two scores, the candidate, its siblings, the data."""

from __future__ import annotations

from flows.summary import class_metrics_table, summary_markdown

CLASSES = ["saree", "trousers", "jeans"]
METRICS = {
    "test_accuracy": 0.95,
    "test_macro_f1": 0.949,
    **{f"test_{c}_{m}": 0.9 + i / 100 for i, c in enumerate(CLASSES) for m in ("precision", "recall", "f1")},
}


def _result(promoted: bool) -> dict:
    train = {"run_id": "r1", "backbone": "efficientnet_lite0", "weights_used": "imagenet", "runtime": "openvino-int8",
             "metrics": METRICS, "val_loss": 0.1234}  # fmt: skip
    sibling = {**train, "run_id": "r0", "backbone": "resnet50", "metrics": {**METRICS, "test_accuracy": 0.6}}
    publish = {"version": "3", "promoted": promoted, "reason": "why", "metric": "test_macro_f1",
               "candidate_score": 0.949, "champion_score": 0.97 if not promoted else 0.9, "champion_version": "2"}  # fmt: skip
    data = {
        "scrape": {
            "new_photos": 5,
            "known_photos": 30,
            "rejected_rate": 0.0,
            "robot_check_rate": 0.0,
            "duplicate_rate": 0.1,
        },  # fmt: skip
        "classes": {c: {"photos": 12, "new": 2} for c in CLASSES},
        "split": {
            "train": dict.fromkeys(CLASSES, 8),
            "val": dict.fromkeys(CLASSES, 1),
            "test": dict.fromkeys(CLASSES, 3),
        },
    }
    return {"train": {**train, "siblings": [train, sibling]}, "publish": publish, "data": data}


def test_the_summary_names_the_decision_both_scores_the_link_and_the_data() -> None:
    text = summary_markdown(_result(promoted=False), "http://ui/#/experiments/1/runs/r1")
    assert text.startswith("# STJ run: model version 3 **rejected**")
    assert "candidate 0.9490, champion (version 2) 0.9700" in text
    assert "[r1](http://ui/#/experiments/1/runs/r1)" in text
    assert "Sibling `resnet50`: test accuracy 0.600" in text and "Sibling `efficientnet_lite0`" not in text
    assert "| jeans | 12 | 2 | 8 | 1 | 3 |" in text and "Label issues" not in text
    cv = {"cv_head_accuracy_mean": 0.9, "cv_head_accuracy_std": 0.05, "cv_knn_accuracy_mean": 0.8,
          "cv_decision_tree_accuracy_mean": 0.7}  # fmt: skip
    result = _result(promoted=False)
    result["train"]["labels"] = {"issues": 4, "crossval": cv}
    assert "Label issues: 4 photo(s) flagged" in summary_markdown(
        result, "link"
    ) and "0.900 ± 0.050" in summary_markdown(result, "link")
    first = summary_markdown({**_result(promoted=True), "data": None} | {"publish": {**_result(True)["publish"],
                             "champion_score": None, "champion_version": None}}, "link")  # fmt: skip
    assert "model version 3 promoted" in first and "champion (none) –" in first and "| class |" not in first
    assert "Stage times" not in first
    timed = summary_markdown({**_result(promoted=True), "stage_seconds": {"scrape": 12.345, "train": 60}}, "link")
    assert "- Stage times: scrape 12.3 s, train 60.0 s" in timed


def test_class_metrics_table_has_a_row_per_class() -> None:
    rows = class_metrics_table(METRICS, CLASSES)
    assert [r["class"] for r in rows] == CLASSES
    assert rows[2] == {"class": "jeans", "precision": 0.92, "recall": 0.92, "f1": 0.92}
