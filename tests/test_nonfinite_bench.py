"""A benchmark of a model with NaN weights: the result is recorded as failed (flagged, no accuracy,
no retention) and charted as failed, with the same finiteness check the smoke tests use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backends.importers import ImportRequest, import_now
from bench.charts import ChartRow, comparison_figure, metrics_for
from bench.jobs.common import submit_benchmarks
from bench.jobs.encoder_classifier import quality
from catalog import results
from catalog.results import NONFINITE_FLAG
from worker.runner import run_to_completion


def _nan_digits_cnn(folder: Path) -> Path:
    """The real digits CNN (a copy of the example's training) with every weight of its first layer NaN."""
    from safetensors.numpy import load_file, save_file

    from workloads import digits_cnn

    digits_cnn.trained(folder)  # the example's training, kept in the user's cache (10 s a training)
    tensors = load_file(str(folder / "model.safetensors"))
    first = sorted(tensors)[0]
    tensors[first] = np.full_like(tensors[first], np.nan)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_a_model_with_nan_weights_is_benchmarked_as_failed(root: Path, tmp_path: Path) -> None:
    source = import_now(ImportRequest(kind="path", path=str(_nan_digits_cnn(tmp_path / "nan-digits"))))
    assert source.task == "image-classification"
    [sub] = submit_benchmarks([source.root_variant_id], "quick")
    job = run_to_completion(sub.job.id)
    assert job.state == "failed", job.error
    assert "NaN or infinite outputs for 100.0% of the held-out inputs" in job.error
    assert job.error.endswith(".") and "\n" not in job.error
    [result] = results.latest_results(source.id, "quick")
    assert NONFINITE_FLAG in result.flags
    assert result.metrics["nonfinite_share"] == 1.0
    for made_up in ("accuracy", "quality_retention", "top1_agreement", "max_abs_error"):
        assert made_up not in result.metrics, made_up
    assert result.metrics["latency_ms_p50"] > 0  # speed was measured; only quality failed


def test_quality_of_nan_outputs_claims_nothing() -> None:
    expected = np.eye(10, dtype=np.float32)[np.arange(20) % 10]
    got = expected.copy()
    got[:5] = np.nan
    figures = quality("image-classification", expected, got)
    assert figures == {"nonfinite_share": 0.25, "reference_nonfinite_share": 0.0, "scored_samples": 20}
    figures = quality("feature-extraction", np.full((4, 8), np.inf, dtype=np.float32), np.ones((4, 8), np.float32))
    assert figures["reference_nonfinite_share"] == 1.0 and "quality_retention" not in figures


def test_a_failed_result_is_charted_as_failed_not_as_a_value() -> None:
    def row(label: str, metrics: dict, flags: list[str], baseline: bool = False) -> ChartRow:
        return ChartRow(label, f"v-{label}", metrics, "p", "f", flags=flags, is_baseline=baseline)

    rows = [row("FP32", {"accuracy": 0.98, "latency_ms_p50": 1.0}, [], baseline=True),
            row("NaN", {"nonfinite_share": 1.0, "accuracy": 0.087, "latency_ms_p50": 1.1}, [NONFINITE_FLAG])]
    fig, warnings = comparison_figure(rows, metrics_for("image-classification"))
    assert any("NaN" in w and "charted as failed" in w for w in warnings)
    [accuracy] = [t for t in fig.data if t.name == "accuracy"]
    assert list(accuracy.y) == [0.98, None]  # the stored 0.087 of an old result is not drawn
    assert any(a.text == "failed: NaN outputs" for a in fig.layout.annotations)
    [latency] = [t for t in fig.data if t.name == "latency_ms_p50"]
    assert list(latency.y) == [1.0, 1.1]  # speed is still shown
