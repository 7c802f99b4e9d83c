"""What every benchmark job shares: the submission of benchmark jobs, the measuring subprocess
and the machine-load checks. Which variants are measured against which baseline is bench/baseline.py
(the pages read it without importing job code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import psutil

from backends.registry import runner_reference, runtime_options_for
from bench.baseline import BASELINE_ADDED, benchmark_formats, benchmark_set, reference_variant  # noqa: F401 (callers)
from bench.protocol import protocol_for
from catalog import config, jobs
from catalog.errors import InvalidInputError
from catalog.results import BUSY_FLAG
from catalog.sources import get_source
from catalog.variants import get_variant
from worker.context import JobContext
from worker.proc import child_environment, die_with_parent
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS

LOADED_CPU_PERCENT = 50.0  # other work above this share of the CPU before the run flags a result


def submit_benchmarks(variant_ids: list[str], profile: str, submitted_by: str | None = None,
                      runtime_options: dict[str, Any] | None = None) -> list[jobs.Submission]:
    """One benchmark job per variant. runtime_options (encoders and classifiers: e.g. an OpenVINO
    performance hint) go to the variants whose runner declares them, and only where they differ
    from the default. Benchmark jobs have no target variant, so nothing deduplicates them: a
    variant may be measured again, with other options or the same ones, and each result is kept."""
    protocol_for(profile)
    subs = []
    for vid in variant_ids:
        variant = get_variant(vid)
        task = get_source(variant.source_id).task
        formats = benchmark_formats(task)
        if variant.format not in formats:
            raise InvalidInputError(f"No runner can benchmark {variant.format} variants of this model yet; pick one "
                                    f"of the formats {', '.join(formats)}.")
        if reference_variant(variant.source_id) is None:
            raise InvalidInputError("This model has no Hugging Face (safetensors) form to serve as the baseline; "
                                    "convert it with 'GGUF → Hugging Face safetensors' first.")
        options = _options_for(variant.format, task, runtime_options or {})
        recipe = {"variant_id": vid, "profile": profile} | ({"runtime_options": options} if options else {})
        shown = "".join(f", {name.replace('_', ' ')} {value}" for name, value in options.items())
        subs.append(jobs.submit("benchmark", recipe, title=f"Benchmark {variant.label} ({profile}{shown})",
                                source_id=variant.source_id, input_variant_id=vid, submitted_by=submitted_by))
    return subs


def _options_for(fmt: str, task: str | None, chosen: dict[str, Any]) -> dict[str, Any]:
    """The benchmark options one variant's runner gets. Only encoder and classifier runners take
    any; asking them of an LLM is refused rather than silently measuring without them."""
    if task not in ENCODER_CLASSIFIER_TASKS:
        if chosen:
            raise InvalidInputError("Benchmark options apply to encoders and image classifiers only; "
                                    f"{', '.join(sorted(chosen))} cannot be used for this model.")
        return {}
    return runtime_options_for(fmt, chosen)


def run_measure(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """bench.measure in a fresh process (so its memory figures are the model's own)."""
    spec_path, out_path = ctx.work_dir / "measure_spec.json", ctx.work_dir / "measure_out.json"
    spec = spec | runner_reference(spec["format"], encoder_classifier=spec.get("kind") == "encoder_classifier")
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "bench.measure", str(spec_path), str(out_path)],
                          cwd=config.PROJECT_DIR, env=child_environment(), capture_output=True, text=True,
                          preexec_fn=die_with_parent, timeout=3600, check=False)
    if proc.returncode < 0:  # killed by a signal: the job reports a crash of this runner, not a failure
        ctx.log(proc.stderr[-4000:])
        raise subprocess.CalledProcessError(proc.returncode, [f"the {spec['format']} speed runner"],
                                            output=proc.stderr[-4000:])
    if proc.returncode != 0:
        ctx.log(proc.stderr[-4000:])
        raise InvalidInputError(f"The runner process failed while measuring speed (exit {proc.returncode}); "
                                "see the log below.")
    return json.loads(out_path.read_text())


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine was just before a measurement; stored with the result."""

    cpu_percent: float
    loadavg: tuple[float, float, float]

    def flags(self, busy_repetitions: bool = False) -> list[str]:
        """["machine_loaded"] when other work (before the run, or during kept-aside repetitions)
        may have slowed the measurement."""
        return [BUSY_FLAG] if busy_repetitions or self.cpu_percent > LOADED_CPU_PERCENT else []


def machine_load() -> MachineLoad:
    """Sampled over one second, before the speed runner starts."""
    return MachineLoad(psutil.cpu_percent(interval=1.0), os.getloadavg())
