"""The smoke test of encoder and classifier conversions: the result and its parent run the same
held-out inputs; a classifier must agree on the top-1 class, an encoder's sentence embeddings
must point the same way (cosine similarity). A result below its threshold is not published."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from backends.smoke import SmokeTestFailed
from bench.tensor_inputs import CLASSIFIER_TASK, all_finite
from bench.tensor_quality import compare, eval_feeds, predict
from worker.context import JobContext

log = logging.getLogger(__name__)

SAMPLES = 64


def run_tensor_smoke(ctx: JobContext, task: str, parent_format: str, parent_path: Path, child_path: Path,
                     tokenizer_folder: Path, min_score: float) -> dict[str, Any]:
    feeds = eval_feeds(task, tokenizer_folder, SAMPLES)
    ctx.progress(0.75, f"smoke test: running the parent {parent_path.name}")
    expected = predict(parent_format, parent_path, task, feeds)
    ctx.progress(0.82, f"smoke test: running {child_path.name}")
    try:
        got = predict("onnx", child_path, task, feeds)
    except Exception as exc:  # onnxruntime raises its own exception types for unrunnable graphs
        raise SmokeTestFailed(f"The converted model does not run in ONNX Runtime ({type(exc).__name__}: "
                              f"{str(exc).strip()[:140]}); it was not published.") from exc
    if not all_finite(got):
        raise SmokeTestFailed("The converted model produces NaN or infinite outputs; it was not published.")
    figures = compare(task, expected, got)
    what = "top-1 agreement" if task == CLASSIFIER_TASK else "mean cosine similarity"
    ctx.log(f"smoke test: {what} {figures['score']:.4f} over {len(got)} held-out inputs "
            f"(max abs error {figures['max_abs_error']:.4g})")
    result = {"metric": what, **{k: round(v, 5) for k, v in figures.items()}, "samples": len(got),
              "min_score": min_score}
    if figures["score"] < min_score:
        raise SmokeTestFailed(f"The result's {what} with its parent is {figures['score']:.3f}, below the "
                              f"{min_score} this conversion must reach; try per-channel scales, another "
                              "calibration method, or a larger block size.")
    return result
