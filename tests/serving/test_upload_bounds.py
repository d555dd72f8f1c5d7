"""Memory bounds per upload: each worst case (a tiny file declaring a huge picture, a cut JPEG, a large photo)
decoded by the server's path in a fresh process costs at most 100 MiB at its peak."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.uploads import GOAL_MIB, measure, worst_cases

pytestmark = pytest.mark.slow


def test_every_worst_case_upload_stays_within_the_memory_bound(tmp_path: Path) -> None:
    outcomes = {}
    for name, data in worst_cases().items():
        path = tmp_path / "upload"
        path.write_bytes(data)
        result = measure(path, image_size=224, bounded=True)
        assert result["extra_mib"] <= GOAL_MIB, (name, result)
        outcomes[name] = result["outcome"]
    assert outcomes["jpeg 64² data declaring 7000²"] == "refused (400)"  # never grey-filled
    assert outcomes["jpeg 7000² flat"] == "ok"  # decoded at 1/8 size in the DCT domain
    assert outcomes["jpeg 4032x3024 photo"] == "ok" and outcomes["png 1990x1990 photo"] == "ok"
    assert outcomes["webp 7000² lossless flat"] == "refused (413)"
