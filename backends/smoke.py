"""The smoke test after every conversion: load the result, generate from fixed prompts, and
compare its next-token predictions with its parent's on the same token ids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.prompts import PROMPTS
from bench.tensor_inputs import all_finite
from catalog.errors import InvalidInputError
from worker.context import JobContext

GEN_TOKENS = 24


class SmokeTestFailed(InvalidInputError):
    """The converted model loads badly or disagrees with its parent; no variant is created."""


def _predictions(fmt: str, path: Path, prompts: tuple[str, ...], sequences: list[list[int]] | None
                 ) -> tuple[list[list[int]], list[np.ndarray], list[str]]:
    from bench.runners import open_runner

    # One thread: the work is tiny, and conversions share the cores (2 threads measured 3-4x slower).
    runner = open_runner(fmt, path, threads=1)
    try:
        generations = [runner.generate(p, GEN_TOKENS) for p in prompts]
        if sequences is None:  # the parent fixes the token ids both sides are scored on
            sequences = [runner.tokenize(p + g) for p, g in zip(prompts, generations, strict=True)]
        logits = [runner.logits(ids) for ids in sequences]
    finally:
        runner.close()
    return sequences, logits, generations


def run_smoke_test(ctx: JobContext, parent_format: str, parent_path: Path, child_format: str, child_path: Path,
                   min_agreement: float) -> dict[str, Any]:
    ctx.progress(0.75, f"smoke test: running the parent {parent_path.name}")
    sequences, parent_logits, parent_gen = _predictions(parent_format, parent_path, PROMPTS, None)
    ctx.progress(0.82, f"smoke test: loading {child_path.name}")
    try:
        _, child_logits, child_gen = _predictions(child_format, child_path, PROMPTS, sequences)
    except (ValueError, RuntimeError, OSError) as exc:
        raise SmokeTestFailed(f"The converted model does not load ({type(exc).__name__}: {str(exc)[:120]}); "
                              "it was not published.") from exc
    if not all(all_finite(lg) for lg in child_logits):
        raise SmokeTestFailed("The converted model produces NaN or infinite logits; it was not published.")
    if all(not g.strip() for g in child_gen):
        raise SmokeTestFailed("The converted model generates only empty text; it was not published.")
    same = total = 0
    for p, c in zip(parent_logits, child_logits, strict=True):
        n = min(len(p), len(c))
        same += int((p[:n].argmax(-1) == c[:n].argmax(-1)).sum())
        total += n
    agreement = same / max(total, 1)
    greedy_same = sum(a == b for a, b in zip(parent_gen, child_gen, strict=True))
    ctx.log(f"smoke test: top-1 agreement {agreement:.3f} over {total} positions; "
            f"{greedy_same}/{len(PROMPTS)} greedy continuations identical")
    result = {"top1_agreement": round(agreement, 4), "positions": total, "min_agreement": min_agreement,
              "identical_continuations": greedy_same,
              "generations": [{"prompt": p, "parent": a, "variant": b}
                              for p, a, b in zip(PROMPTS, parent_gen, child_gen, strict=True)]}
    if math.isnan(agreement) or agreement < min_agreement:
        raise SmokeTestFailed(
            f"The result agrees with its parent on {agreement:.0%} of next tokens, below the {min_agreement:.0%} "
            "this precision must reach; try a higher-bit type or an importance matrix.")
    return result
