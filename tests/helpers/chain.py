"""Running conversions to completion in tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backends import convert_job
from catalog import variants
from catalog.records import Variant
from worker.runner import run_to_completion


def convert(conversion: str, variant_id: str, **options) -> list[Variant]:
    """Submit, run every job of the plan here, and return the variants made (or reused)."""
    out = []
    for sub in convert_job.submit(conversion, variant_id, options):
        if sub.variant is not None:
            out.append(sub.variant)
            continue
        job = run_to_completion(sub.job.id)
        assert job.state == "succeeded", job.error
        out.append(variants.get_variant(job.target_variant_id))
    return out


@contextmanager
def data_root_at(path: Path, allowed_roots: list[str] | None = None) -> Iterator[Path]:
    """Point this process at a data root for a module-scoped fixture (function fixtures use
    monkeypatch); with allowed_roots, a fresh root gets settings that let imports read there."""
    from catalog import config, db

    mp = pytest.MonkeyPatch()
    mp.setenv(config.ROOT_ENV, str(path))
    db.reset_migration_cache()
    if allowed_roots is not None and not config.settings_path().exists():
        config.save_settings(config.Settings(allowed_roots=allowed_roots, lease_timeout_s=10))
    try:
        yield path
    finally:
        mp.undo()


def benchmark(variant_ids: list[str], profile: str = "quick") -> None:
    """Run benchmark jobs of these variants here, each to success."""
    from bench.jobs.common import submit_benchmarks

    for sub in submit_benchmarks(variant_ids, profile):
        job = run_to_completion(sub.job.id)
        assert job.state == "succeeded", job.error


def benchmark_unmeasured(variants: list[Variant], profile: str = "quick") -> None:
    """Benchmark the variants that have no result of this profile yet, with their source's baseline
    when it has none (as the Benchmarks page submits them), each to success: a test that only reads
    a result takes the one an earlier test of its worker made (an MLX benchmark on the CPU backend
    takes minutes)."""
    from bench.baseline import benchmark_set
    from catalog import results

    missing = [v.id for v in variants
               if v.id not in {r.variant_id for r in results.latest_results(v.source_id, profile)}]
    if missing:
        benchmark(benchmark_set(missing, profile), profile)


def import_tiny_llama(demo_hf: Variant, demo_root: Path, folder: Path) -> Variant:
    """A 2-layer Llama with the demo's tokenizer (tests/helpers/models.tiny_llama), imported into
    this test's data root: its Hugging Face root variant. The mechanics of a runtime's LLM path
    (conversion, gate, benchmark) run on it in seconds; the demo keeps the quality checks."""
    from backends.importers import ImportRequest, import_now
    from tests.helpers.models import tiny_llama

    with data_root_at(demo_root):
        tokenizer_from = variants.variant_path(demo_hf)
    source = import_now(ImportRequest(kind="path", path=str(tiny_llama(tokenizer_from, folder))))
    return variants.get_variant(source.root_variant_id)


def planned_variant(conversion: str, variant_id: str, **options) -> Variant:
    """The variant a submit of these options made: ids follow from the recipe, so this finds it
    among other variants of the same format and precision that earlier tests made."""
    steps, problems = convert_job.plan(conversion, variant_id, options)
    assert steps, problems
    return variants.get_variant(steps[-1].target_variant_id)


def newer_copy(result_id: str, **changes) -> str:
    """A later result of the same variant: a copy of this one's row (with changes), as a rerun of
    its benchmark would add; the id of the copy. Pages that read "newer than shown" need no real rerun."""
    from catalog import db, results

    [old] = results.results_by_id([result_id])
    fields = {k: getattr(old, k) for k in ("variant_id", "source_id", "job_id", "protocol_id", "profile", "runtime",
                                          "fingerprint_id", "fingerprint", "metrics", "raw", "toolkit_versions",
                                          "flags")}
    with db.connect() as conn:
        return results.add_result(conn, **(fields | changes))
