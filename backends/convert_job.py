"""Conversions as jobs: plan (batch, intermediates, identity), submit, and run in the job process.

A plan is a list of steps; a step may take its input from an earlier step's output. Because a
variant's id derives from parent + recipe + toolkit versions, every step's output id is known
before anything runs, so identical steps are recognised and shared (the F16 intermediate and
the importance matrix of a batch are made once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from backends.preflight import Problem, errors, run_preflight
from backends.registry import Conversion, get_conversion, main_file, toolkit_versions
from backends.smoke import run_smoke
from catalog import calibration, db, jobs
from catalog.errors import InvalidInputError
from catalog.files import hash_folder
from catalog.identity import variant_id
from catalog.records import Variant
from catalog.sources import get_source
from catalog.variants import NewVariant, find_variant, get_variant
from worker.context import JobContext

log = logging.getLogger(__name__)

@dataclass
class Step:
    conversion: str                    # registry key, e.g. "llamacpp.quantize"
    options: dict[str, Any]
    input_variant_id: str | None = None
    input_step: int | None = None      # take the output of an earlier step instead
    intermediate: bool = False
    extra_inputs: dict[str, int | str] = field(default_factory=dict)  # name -> step index or variant id


@dataclass
class PlannedStep:
    step: Step
    conversion: Conversion
    input_variant_id: str
    target_variant_id: str
    options: dict[str, Any]
    extra_inputs: dict[str, str]
    existing: Variant | None


@dataclass
class ConversionOutput:
    """What a convert hook reports about the files it wrote."""

    precision: str
    metadata: dict[str, Any] = field(default_factory=dict)


def plan(conversion_key: str, input_variant_id: str, raw_options: dict[str, Any]
         ) -> tuple[list[PlannedStep], list[Problem]]:
    """Every job a submit would create, with ids, and the pre-flight problems found."""
    conv = get_conversion(conversion_key)
    variant = get_variant(input_variant_id)
    options, problems = run_preflight(conv, variant, raw_options)
    if options is None or errors(problems):
        return [], problems
    steps: list[Step] = conv.plan(variant, options) if conv.plan else _default_steps(conv, variant, options)
    planned: list[PlannedStep] = []
    for step in steps:
        sconv = get_conversion(step.conversion)
        parent = planned[step.input_step].target_variant_id if step.input_step is not None else step.input_variant_id
        assert parent is not None
        extras = {name: planned[ref].target_variant_id if isinstance(ref, int) else ref
                  for name, ref in step.extra_inputs.items()}
        opts = sconv.normalize(step.options)
        identity_options = dict(opts, **{f"input:{k}": v for k, v in extras.items()})
        target = variant_id(parent, sconv.backend, sconv.name, identity_options, toolkit_versions(sconv.backend))
        existing = _existing(target)
        planned.append(PlannedStep(step, sconv, parent, target, opts, extras, existing))
    return planned, problems


def _existing(target: str) -> Variant | None:
    found = find_variant(target)
    return found if found is not None and found.state == "available" else None


def _default_steps(conv: Conversion, variant: Variant, options: dict[str, Any]) -> list[Step]:
    if conv.batch_option:
        return [Step(conv.key, dict(options, **{conv.batch_option: [value]}), input_variant_id=variant.id)
                for value in options[conv.batch_option]]
    return [Step(conv.key, options, input_variant_id=variant.id)]


def submit(conversion_key: str, input_variant_id: str, raw_options: dict[str, Any],
           submitted_by: str | None = None) -> list[jobs.Submission]:
    """Queue the plan's jobs (reusing finished variants and running jobs); raise on an error."""
    steps, problems = plan(conversion_key, input_variant_id, raw_options)
    bad = errors(problems)
    if bad:
        raise InvalidInputError(bad[0])
    source_id = get_variant(input_variant_id).source_id
    # One transaction under the catalog lock: the calibration copy and the jobs that name it are
    # recorded together, so a failing job's cleanup (calibration.release) never removes it between.
    with db.connect():
        made = calibration.keep(raw_options.get("calibration"), [p.options.get("calibration", "") for p in steps])
        try:
            return _submit_steps(steps, source_id, submitted_by)
        except BaseException:
            for path in made:
                path.unlink(missing_ok=True)
            raise


def _submit_steps(steps: list[PlannedStep], source_id: str, submitted_by: str | None) -> list[jobs.Submission]:
    subs: list[jobs.Submission] = []
    for p in steps:
        deps = []
        for ref in [p.step.input_step, *[r for r in p.step.extra_inputs.values() if isinstance(r, int)]]:
            if ref is not None and subs[ref].job is not None:
                deps.append(subs[ref].job.id)
        label = _label(p)
        recipe = {"conversion": p.conversion.key, "input_variant_id": p.input_variant_id, "options": p.options,
                  "extra_inputs": p.extra_inputs, "intermediate": p.step.intermediate,
                  "toolkit_versions": toolkit_versions(p.conversion.backend)}
        subs.append(jobs.submit("convert", recipe, title=label, source_id=source_id,
                                input_variant_id=p.input_variant_id, target_variant_id=p.target_variant_id,
                                depends_on=deps, submitted_by=submitted_by))
    return subs


def _label(p: PlannedStep) -> str:
    # which options name the variant is the conversion's to say; the extra inputs (an importance
    # matrix) are named as the variant's recipe records them, so an unused calibration is left out
    return p.conversion.step_title(dict(p.options, **{f"input:{k}": v for k, v in p.extra_inputs.items()}))


# ------------------------------------------------------------------------------ in the job


def run_convert_job(ctx: JobContext) -> dict[str, Any]:
    recipe = ctx.job.recipe
    conv = get_conversion(recipe["conversion"])
    parent = get_variant(recipe["input_variant_id"])
    if parent.state != "available":
        raise InvalidInputError(f"The input variant {parent.id} is {parent.state}; it cannot be converted.")
    extras = {name: get_variant(vid) for name, vid in (recipe.get("extra_inputs") or {}).items()}
    out_dir = ctx.work_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"{conv.title}: {parent.label} ({parent.id}) options={recipe['options']}")
    parent_path = main_file(parent)
    output: ConversionOutput = conv.convert(ctx, parent, parent_path, out_dir, recipe["options"], extras)
    gate = conv.gate_for(recipe["options"], parent)
    if gate is not None:  # every model a conversion makes passes its smoke test before it is published
        task = output.metadata.get("task") or get_source(parent.source_id).task
        output.metadata["smoke"] = run_smoke(ctx, gate, parent, parent_path, out_dir, conv.output_format, task)
    ctx.progress(0.9, "hashing the output")
    hashed = hash_folder(out_dir)
    if not hashed:
        raise InvalidInputError("The conversion wrote no files; see the log for the toolkit's output.")
    target = ctx.job.target_variant_id
    assert target is not None
    new = NewVariant(id=target, source_id=parent.source_id, parent_id=parent.id, format=conv.output_format,
                     precision=output.precision, backend=conv.backend, conversion=conv.name,
                     options=dict(recipe["options"], **{f"input:{k}": v.id for k, v in extras.items()}),
                     toolkit_versions=recipe["toolkit_versions"], job_id=ctx.job.id, metadata=output.metadata,
                     intermediate=bool(recipe.get("intermediate")), files=hashed)
    result = {"variant_id": target, "precision": output.precision,
              "size_bytes": sum(h[1] for h in hashed)}
    published = ctx.publish_variant(out_dir, new, result)
    ctx.log(f"recorded variant {target} ({output.precision}, {result['size_bytes'] / 2**20:.1f} MB)")
    return published
