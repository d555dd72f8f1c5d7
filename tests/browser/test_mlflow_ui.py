"""The MLflow UI lands on the comparison (issue 28): `make mlflow-ui`'s link opens the reference run's
experiment on its runs table, not MLflow 3's GenAI overview, with STJ's key figures as columns and the sibling
backbones grouped by their pipeline run; two runs compare side by side; a run's artifacts hold comparison.md.
The screenshots it takes (into STJ_SCREENSHOTS when set) are the ones docs/mlflow-ui.md shows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.processes import free_port
from team.processes import answers_ok
from tests.browser.conftest import wait
from tests.support import wait_until
from training.runs.track import comparison_link

pytestmark = pytest.mark.browser


def _close_the_assistant(browser) -> None:
    """MLflow 3.17 opens its AI assistant beside every page; closed, the table gets its width."""
    for button in browser.find_elements("css selector", "button[aria-label]"):
        if button.get_attribute("aria-label").lower() in ("close", "close assistant") and button.is_displayed():
            button.click()
            return


def _hide_paths(browser) -> None:
    """The artifact viewer shows where the store keeps the file (a folder of this machine): not in the docs."""
    browser.execute_script(
        "for (const e of document.querySelectorAll('*')) if (e.children.length === 0 && "
        "/^Path: /.test(e.textContent || '')) e.parentElement.style.visibility = 'hidden';"
    )


def test_the_link_opens_the_runs_side_by_side(reference, launch, browser, shots) -> None:
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    link = comparison_link(reference.config.tracking, ui_url=ui)  # before the UI: it may set the view's tag
    assert link.endswith("/runs?viewStateShareKey=stj-compare")
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    launch([mlflow, "ui", "--backend-store-uri", reference.config.tracking.uri, "--host", "127.0.0.1", "--port",
            str(port)], "mlflow-ui.log")  # fmt: skip
    wait_until(answers_ok(f"{ui}/health"), "the MLflow UI", seconds=120)

    browser.set_window_size(1600, 1000)
    browser.get(link)
    text = lambda d: d.find_element("css selector", "body").text  # noqa: E731
    wait(browser, lambda d: "test_macro_f1" in text(d) and "Group:" in text(d), timeout=90)
    _close_the_assistant(browser)
    shown = text(browser)
    assert "Training runs" in shown and "Group by: comparison" in shown  # the runs, grouped by pipeline run
    # ag-grid places header cells absolutely (their DOM order is not the order shown): compare where they stand
    place = {h.text.split("\n")[0]: h.location["x"] for h in browser.find_elements("css selector", "[role=columnheader]")
             if h.text and h.is_displayed()}  # fmt: skip
    assert place["test_macro_f1"] < place["best_val_loss"], place  # the deciding figures first
    siblings = reference.summary["train"]["siblings"]
    assert all(run["backbone"] in shown for run in siblings)
    browser.save_screenshot(str(shots / "mlflow-runs.png"))

    boxes = [b for b in browser.find_elements("css selector", ".ag-center-cols-container .ag-row, .ag-pinned-left-cols-container .ag-row")
             if any(run["backbone"] in b.text for run in siblings)]  # fmt: skip
    for row in boxes[: len(siblings)]:
        row.find_element("css selector", "input[type=checkbox], .ag-checkbox-input").click()
    compare = wait(browser, lambda d: [b for b in d.find_elements("tag name", "button") if b.text.strip() == "Compare"])
    compare[0].click()
    wait(browser, lambda d: "compare-runs" in d.current_url and "test_macro_f1" in text(d), timeout=60)
    browser.save_screenshot(str(shots / "mlflow-compare.png"))

    run_id = reference.summary["train"]["run_id"]
    experiment = link.split("/experiments/")[1].split("/")[0]
    browser.get(f"{ui}/#/experiments/{experiment}/runs/{run_id}/artifacts/comparison.md")
    wait(browser, lambda d: "knn" in text(d) and "confusion_matrix.png" in text(d), timeout=60)
    _hide_paths(browser)
    browser.save_screenshot(str(shots / "mlflow-artifacts.png"))
