"""ui.fmt's relative times: past ("5 min ago") and future ("in 11 h", a session's end on the Team page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ui import fmt

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("offset", "shown"), [
    (timedelta(seconds=-20), "just now"),
    (timedelta(minutes=-5), "5 min ago"),
    (timedelta(hours=-3), "3 h ago"),
    (timedelta(days=-2), "2025-03-12"),
    (timedelta(seconds=20), "in under a minute"),
    (timedelta(minutes=5), "in 5 min"),
    (timedelta(hours=11), "in 11 h"),
    (timedelta(days=3), "2025-03-17"),
])
def test_when_reads_past_and_future_times(offset: timedelta, shown: str) -> None:
    assert fmt.when(NOW + offset, now=NOW) == shown


def test_when_takes_the_catalogs_naive_utc_times_and_the_clock() -> None:
    ahead = (datetime.now(UTC) + timedelta(hours=11, minutes=1)).replace(tzinfo=None)  # as a session's expires_at
    assert fmt.when(ahead) == "in 11 h"
    assert fmt.when(NOW.replace(tzinfo=None) + timedelta(hours=-3), now=NOW) == "3 h ago"
    assert fmt.when(None) == "–"


def test_variants_that_share_a_label_are_told_apart() -> None:
    from types import SimpleNamespace

    def variant(label: str, backend: str, conversion: str) -> SimpleNamespace:
        return SimpleNamespace(label=label, backend=backend, conversion=conversion)

    from catalog.variants import distinct_labels

    labels = distinct_labels({
        "v-1": variant("onnx-genai INT4", "olive", "auto_opt"),
        "v-2": variant("onnx-genai INT4", "onnxrt", "genai_build"),
        "v-3": variant("gguf Q4_K_M", "llamacpp", "quantize"),
        "v-4": variant("gguf Q8_0", "llamacpp", "quantize"), "v-5": variant("gguf Q8_0", "llamacpp", "quantize")})
    assert labels["v-1"] == "onnx-genai INT4 (olive auto_opt)"
    assert labels["v-2"] == "onnx-genai INT4 (onnxrt genai_build)"
    assert labels["v-3"] == "gguf Q4_K_M"
    assert labels["v-4"] == "gguf Q8_0 (llamacpp quantize) · v-4" and len(set(labels.values())) == 5
