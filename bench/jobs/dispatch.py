"""The worker's entry point for a benchmark job: finds the variant's baseline and protocol and
hands the job to the module for its kind of model.

It imports the per-kind modules and none of them imports it, so the import graph of bench.jobs
has no cycle. They are imported only on use: an LLM benchmark never loads the encoder/classifier stack."""

from __future__ import annotations

from typing import Any

from bench.jobs.common import reference_variant
from bench.protocol import CausalLMProtocol, protocol_for
from catalog.errors import InvalidInputError
from catalog.sources import get_source
from catalog.variants import get_variant
from worker.context import JobContext
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS


def run_benchmark_job(ctx: JobContext) -> dict[str, Any]:
    recipe = ctx.job.recipe
    variant = get_variant(recipe["variant_id"])
    task = get_source(variant.source_id).task
    reference = reference_variant(variant.source_id)
    if reference is None:
        raise InvalidInputError("This model has no Hugging Face (safetensors) form to serve as the baseline; "
                                "convert it first.")
    if task in ENCODER_CLASSIFIER_TASKS:
        from bench.jobs.encoder_classifier import protocol_of, run_encoder_classifier_benchmark

        return run_encoder_classifier_benchmark(ctx, variant, reference, protocol_of(variant.format, task,
                                                                                     recipe["profile"]),
                                                recipe.get("runtime_options"))
    from bench.jobs.causal_lm import run_causal_lm_benchmark

    protocol = protocol_for(recipe["profile"])
    assert isinstance(protocol, CausalLMProtocol)
    return run_causal_lm_benchmark(ctx, variant, reference, protocol)
