"""The benchmark protocol against llama.cpp's own tools, and its busy-machine rules."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bench.charts import ChartRow, comparability
from bench.measure import OtherLoad
from bench.metrics import cv, llamacpp_perplexity, steady_runs
from bench.protocol import EVAL_TEXT
from tests.bench.upstream import FINAL_PPL


def test_compatible_perplexity_matches_llama_perplexity(llama_tools: Path, demo_gguf: Path) -> None:
    """The catalog's llama.cpp-compatible perplexity is within 1% of llama-perplexity -c 512 on the
    same file and text (2 chunks, to keep CI short; the perf script runs every chunk)."""
    from backends.llamacpp.runner import load

    proc = subprocess.run([str(llama_tools / "llama-perplexity"), "-m", str(demo_gguf), "-f", str(EVAL_TEXT),
                           "-c", "512", "-t", "2", "--chunks", "2"], capture_output=True, text=True, timeout=600,
                          check=True)
    upstream = float(FINAL_PPL.search(proc.stdout + proc.stderr).group(1))
    runner = load(demo_gguf, threads=2, n_ctx=1024)
    try:
        ours = llamacpp_perplexity(runner.tokenize, runner.upstream_logits, EVAL_TEXT.read_text(), 512, max_chunks=2)
    finally:
        runner.close()
    assert ours["llamacpp_ppl_chunks"] == 2 and ours["llamacpp_ppl_scored"] == 2 * 255
    assert ours["llamacpp_perplexity"] == pytest.approx(upstream, rel=0.01)


def test_compatible_perplexity_scores_the_second_half_after_bos() -> None:
    """A model that predicts every token uniformly has perplexity = vocabulary size; the chunk's
    first token is replaced by BOS where the tokenizer adds one, and the text is cut in chunks."""
    seen: list[list[int]] = []

    def tokenize(text: str) -> list[int]:
        return [1] + [2 + (ord(c) % 7) for c in text]  # BOS = 1

    def logits(ids: list[int]) -> np.ndarray:
        seen.append(ids)
        return np.zeros((len(ids), 10), dtype=np.float32)

    out = llamacpp_perplexity(tokenize, logits, "x" * 40, n_ctx=16)
    assert out["llamacpp_perplexity"] == pytest.approx(10.0)
    assert out["llamacpp_ppl_chunks"] == 41 // 16 and out["llamacpp_ppl_scored"] == 2 * 7
    assert all(chunk[0] == 1 and len(chunk) == 16 for chunk in seen)
    with pytest.raises(ValueError, match="at least 512"):
        llamacpp_perplexity(tokenize, logits, "short", n_ctx=512)


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_other_processes_cpu_is_seen_during_a_repetition() -> None:
    busy_child = multiprocessing.Process(target=_spin, args=(1.5,))
    busy_child.start()
    try:
        with OtherLoad() as busy:
            time.sleep(1.0)
    finally:
        busy_child.join()
    # One spinning process is half of a 2-core machine; anything else running only adds to it.
    assert busy.share >= 0.4 * 2 / (os.cpu_count() or 2)


def test_the_measuring_process_own_work_is_not_counted_as_other() -> None:
    with OtherLoad() as quiet:
        time.sleep(0.5)
    if quiet.share > 0.1:
        pytest.skip(f"the machine is busy ({quiet.share:.0%} of it used by others); this needs a quiet one")

    def own_share() -> float:
        with OtherLoad() as own:
            _spin(0.5)
        return own.share

    # Other work can only add to the share, so the least of three tries is the measurement's own error.
    assert min(own_share() for _ in range(3)) < 0.15


def test_disturbed_repetitions_are_set_aside_and_a_mostly_busy_run_is_flagged() -> None:
    runs = [{"decode_tps": 100.0, "others_cpu_share": 0.01} for _ in range(8)]
    runs += [{"decode_tps": 40.0, "others_cpu_share": 0.5} for _ in range(2)]
    kept, busy = steady_runs(runs, 0.10)
    assert len(kept) == 8 and not busy and cv([r["decode_tps"] for r in kept]) == 0.0
    mostly_busy = runs[:2] + [{"decode_tps": 40.0, "others_cpu_share": 0.5} for _ in range(8)]
    kept, busy = steady_runs(mostly_busy, 0.10)
    assert busy and len(kept) == 10  # too few quiet ones: all reported, and flagged


def test_unsteady_results_are_named_in_one_warning() -> None:
    rows = [ChartRow("source", "v-a", {"decode_tps_cv": 0.01}, "p-1", "f-1", is_baseline=True),
            ChartRow("Q8_0", "v-b", {"decode_tps_cv": 0.6}, "p-1", "f-1", flags=["unsteady"])]
    _, warnings = comparability(rows)
    assert warnings == ["Decode speed varied between repetitions by more than 5% (CV): Q8_0 (60%); "
                        "rerun on a quiet machine."]


def test_a_simulated_device_is_said_on_the_chart() -> None:
    """Latency from the QNN HTP simulator is labelled simulated on the bars and in a warning, even
    when its protocol differs too (a simulator runs fewer repetitions)."""
    from bench.charts import comparison_figure

    rows = [ChartRow("onnx F32", "v-a", {"latency_ms_p50": 150.0}, "p-1", "f-1", is_baseline=True),
            ChartRow("qnn QDQ", "v-b", {"latency_ms_p50": 6900.0}, "p-2", "f-2", device="QNN HTP simulator"),
            ChartRow("mlx 4-bit", "v-c", {"latency_ms_p50": 90.0}, "p-1", "f-3", device="MLX GPU")]
    odd, warnings = comparability(rows)
    assert odd == {"v-b", "v-c"}
    assert "qnn QDQ ran on the QNN HTP simulator: its latency is simulated, not a device's." in warnings
    assert any(w.startswith("qnn QDQ was measured with another protocol") for w in warnings)
    assert "mlx 4-bit ran on MLX GPU, not on this machine's CPU like the baseline." in warnings
    fig, _ = comparison_figure(rows, [("latency_ms_p50", "Latency", None)])
    assert "qnn QDQ · simulated ⚠" in list(fig.data[0].x)


def test_nan_logits_claim_no_quality_figure() -> None:
    """A language model giving NaN logits gets no perplexity, agreement or retention (an argmax over
    NaN is token 0, which would read as agreement), only the share of positions affected."""
    from bench.metrics import causal_lm_quality

    ids = list(range(10))
    windows = [(0, 5), (5, 10)]
    good = [np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32) for _ in windows]
    bad = [good[0].copy(), good[1].copy()]
    bad[1][2, 3] = np.nan
    out = causal_lm_quality(ids, windows, bad, good)
    assert out["nonfinite_share"] == pytest.approx(0.1) and out["reference_nonfinite_share"] == 0.0
    assert not {"perplexity", "top1_agreement", "quality_retention", "kl_mean"} & set(out)
    assert causal_lm_quality(ids, windows, good, good)["top1_agreement"] == 1.0
