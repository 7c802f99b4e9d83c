"""Olive conversions: pre-flight checks and the work, both through workflow configs.

auto-opt from the form becomes the workflow config `olive auto-opt --save_config_file` writes for
the same choices (a ModelBuilder pass and ExtractAdapters on the local CPU system), run by `olive
run` so that Olive keeps its footprints and run history. A user's config runs the same way. Both
outputs are ONNX Runtime GenAI folders: checked by the ONNX checker, run once, then smoke-tested
against the parent by the shared job code before they become variants.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from backends.convert_job import ConversionOutput
from backends.olive import combos, workflow
from backends.onnxrt.genai_build import check_output, run_once, validate_genai_build
from backends.preflight import Problem
from backends.registry import Gate, Option, main_file
from catalog.errors import InvalidInputError
from catalog.records import Variant
from worker.context import JobContext
from workloads.datasets import CALIBRATION_TEXT

WORKFLOW_GATE = Gate("top1_agreement", 0.6, "check the config's precision; int4 RTN measured 0.67 on the demo")
# Olive's Rtn (groups of 32, asymmetric) then the model builder measured 0.605 on the demo (auto-opt's
# int4: 0.658); the floor leaves room for another CPU's rounding.
QUANTIZE_GATE = Gate("top1_agreement", 0.58, "try auto-opt int4, or a GGUF Q8_0")


class WorkflowOption(Option):
    """A pasted JSON or YAML workflow config, stored in its canonical form (see workflow.canonical):
    code-running and path-escaping configs are refused here, before any job exists."""

    def normalize(self, value: Any) -> Any:
        if value is None or not str(value).strip():
            value = self.default
        if value is None or not str(value).strip():
            raise InvalidInputError("Paste an Olive workflow config (JSON or YAML); the form shows examples.")
        return workflow.canonical(str(value))  # idempotent: a recipe read back stays the same


def auto_opt_recipe(options: dict[str, Any]) -> str:
    """The workflow config auto-opt writes for these choices (as `--save_config_file` showed for
    --device cpu --provider CPUExecutionProvider --use_model_builder --precision int4)."""
    accelerator = {"device": options["device"],
                   "execution_providers": [combos.PROVIDERS[options["execution_provider"]]]}
    cfg = {"systems": {"local_system": {"type": "LocalSystem", "accelerators": [accelerator]}},
           "passes": {"model_builder": {"type": "ModelBuilder", "precision": options["precision"]},
                      "extract_adapters": {"type": "ExtractAdapters"}},
           "host": "local_system", "target": "local_system", "log_severity_level": 1}
    return json.dumps(workflow.ordered(cfg), separators=(",", ":"))


# ------------------------------------------------------------------------------ pre-flight


def validate_auto_opt(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    return validate_genai_build(variant, {"precision": options["precision"]})


def validate_workflow(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = validate_genai_build(variant, {})
    if any(p.level == "error" for p in problems):
        return problems
    why = workflow.check_with_olive(options["workflow"], main_file(variant))
    why = why or _group_size_refusal(workflow.parse(options["workflow"]),
                                     json.loads((main_file(variant) / "config.json").read_text()))
    return problems + ([Problem("error", why)] if why else [])


# Olive's weight quantizer passes on the Hugging Face form, and their default group size: a group
# that does not divide a layer's input width fails while packing (after the slow part of GPTQ).
QUANTIZER_PASSES = ("Gptq", "Rtn", "GptqModel", "AutoGptq")
DEFAULT_GROUP_SIZE = 128


def _group_size_refusal(cfg: dict[str, Any], model_config: dict[str, Any]) -> str | None:
    widths = {name: model_config.get(name) for name in ("hidden_size", "intermediate_size")}
    widths = {name: int(w) for name, w in widths.items() if isinstance(w, int) and w > 0}
    for name, spec in (cfg.get("passes") or {}).items():
        if not isinstance(spec, dict) or spec.get("type") not in QUANTIZER_PASSES:
            continue
        group = spec.get("group_size", DEFAULT_GROUP_SIZE)
        if not isinstance(group, int) or group <= 0:
            continue  # -1 (per channel) fits every width; Olive's own check judges the rest
        uneven = {n: w for n, w in widths.items() if w % group}
        if uneven:
            fits = [g for g in (128, 64, 32, 16) if all(w % g == 0 for w in widths.values())]
            default = "" if "group_size" in spec else ", Olive's default"
            return (f"Pass {name!r} ({spec['type']}) quantizes in groups of {group}{default}, which does not divide "
                    f"this model's {', '.join(f'{n} {w}' for n, w in uneven.items())}; set group_size to "
                    f"{fits[0] if fits else -1} in that pass.")
    return None


# ------------------------------------------------------------------------------ the work


def _run(ctx: JobContext, parent: Variant, path: Path, out: Path, recipe: str, precision: str) -> ConversionOutput:
    cfg = workflow.injected(recipe, path, ctx.work_dir, bool(parent.metadata.get("trust_remote_code")))
    if workflow.CALIBRATION_FILE in recipe:  # the shipped calibration text, as a file of the job folder
        workflow.write_calibration(ctx.work_dir, CALIBRATION_TEXT)
    ctx.progress(0.05, "olive: starting the workflow")
    output = workflow.run(ctx, cfg)
    found = workflow.find_genai_folder(output) if output.is_dir() else None
    if found is None:  # judged by what was written: Olive can exit 0 having written nothing
        raise InvalidInputError("Olive's workflow wrote no ONNX Runtime GenAI model (model.onnx with "
                                "genai_config.json); see the job log. Nothing was published.")
    olive = workflow.olive_record(output, out / "olive")
    for item in found.iterdir():
        if item.name not in workflow.RECORD_FILES:  # those are kept under olive/
            shutil.move(str(item), out / item.name)
    ctx.progress(0.62, "ONNX checker")
    facts = check_output(out)
    ctx.progress(0.66, "running the result once")
    sample = run_once(out)
    ctx.log(f"ONNX checker passed (opset {facts['opset']}); first run: {sample!r}")
    shutil.rmtree(ctx.work_dir / ".olive-cache", ignore_errors=True)
    return ConversionOutput(precision, {"olive_workflow": json.loads(recipe), "olive": olive,
                                        "tool_record": workflow.page_record(olive), **facts})


def convert_auto_opt(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                     extras: dict[str, Variant]) -> ConversionOutput:
    return _run(ctx, parent, path, out, auto_opt_recipe(options), combos.PRECISIONS[options["precision"]])


def quantize_recipe(options: dict[str, Any]) -> str:
    """`olive quantize --algorithm rtn` on the Hugging Face form (Olive's own Rtn pass, 4-bit
    groups), then the model builder writes the quantized weights as MatMulNBits: an ONNX Runtime
    GenAI folder, which the onnx-genai runner benchmarks. (On its own, `olive quantize` leaves a
    PyTorch model in Olive's quantized form, which no runner of the catalog loads.)"""
    cfg = {"passes": {options["algorithm"]: {"type": combos.QUANTIZE_PASSES[options["algorithm"]], "bits": 4,
                                             "group_size": int(options["group_size"]), "sym": options["symmetric"]},
                      "model_builder": {"type": "ModelBuilder", "precision": "int4"}},
           "log_severity_level": 1}
    return json.dumps(workflow.ordered(cfg), separators=(",", ":"))


def convert_quantize(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                     extras: dict[str, Variant]) -> ConversionOutput:
    return _run(ctx, parent, path, out, quantize_recipe(options), "INT4")


def validate_quantize(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    return validate_genai_build(variant, {"precision": "int4"})


def convert_workflow(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                     extras: dict[str, Variant]) -> ConversionOutput:
    recipe = options["workflow"]
    passes = json.loads(recipe).get("passes", {})
    precisions = {str(p.get("precision", "")).upper() for p in passes.values() if isinstance(p, dict)} - {""}
    return _run(ctx, parent, path, out, recipe, "+".join(sorted(precisions)) or "ONNX")


def auto_opt_gate(options: dict[str, Any], parent: Any) -> Gate:
    return combos.GATES[options["precision"]]
