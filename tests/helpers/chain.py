"""Running conversions to completion in tests."""

from __future__ import annotations

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
