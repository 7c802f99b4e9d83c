"""MLX in tests: MLX on the CPU backend prefills at a few tokens per second here (the Linux wheel
multiplies with the reference BLAS), so a quick benchmark of one MLX variant takes minutes. The
browser test and tests/test_mlx.py make the same variants in the session's shared root; each MLX
variant is benchmarked by whichever test comes first, once per session."""

from __future__ import annotations

from typing import Any


def benchmark_unmeasured(variants: list[Any], profile: str = "quick") -> None:
    """Benchmark the variants that have no result of this profile yet (to success)."""
    from catalog import results
    from tests.helpers.chain import benchmark

    missing = []
    for v in variants:
        measured = {r.variant_id for r in results.latest_results(v.source_id, profile)}
        if v.id not in measured:
            missing.append(v.id)
    if missing:
        benchmark(missing, profile)
