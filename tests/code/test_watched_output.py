"""The reference run's output check sees each kind of line a user would ask about: a logged warning, a Python
warning, a native library's line on file descriptor 2; and not a progress line."""

from __future__ import annotations

import logging
import os
import warnings

from tests.support import watched_output


def test_each_kind_of_unwanted_line_is_seen() -> None:
    seen: list[str] = []
    with watched_output(seen):
        logging.getLogger("training.example").info("epoch 3/4")  # progress: not kept
        logging.getLogger("training.example").warning("a logged warning")
        logging.getLogger("prefect.flow_runs").error("a Prefect error")
        warnings.warn("a Python warning", UserWarning, stacklevel=1)
        os.write(2, b"W0000 00:00:00.000000 1 native.cc:1] a native line\n")
    assert any(line.startswith("WARNING training.example: a logged warning") for line in seen), seen
    assert any(line.startswith("ERROR prefect.flow_runs: a Prefect error") for line in seen), seen
    assert any(line.startswith("UserWarning: a Python warning") for line in seen), seen
    assert any(line.startswith("W0000 ") for line in seen), seen
    assert not any("epoch 3/4" in line for line in seen)
