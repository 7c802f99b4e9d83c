"""Sharing a comparison (issue 25): what its list, saves, deletes and exports say. Cheap: pure
functions and a tiny imported model's hand-made results, never a conversion or a benchmark."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog.comparisons import Comparison


def test_the_saved_list_counts_the_baseline_among_the_results() -> None:
    now = datetime.now(UTC)
    saved = Comparison("c-1", "demo", "ed", now, now,
                       {"baseline_result_id": "r-base", "result_ids": [f"r-{i}" for i in range(7)]})
    assert len(saved.result_ids) == 7
    assert saved.shown_ids[0] == "r-base" and len(saved.shown_ids) == 8  # the page's 8 rows, not "7 results"
