"""ONNX conversions of encoders and image classifiers: export, INT8 (dynamic, static), INT4
weight-only and FP16. Declarations are in declaration.py.

validate_* run in the app (cheap reads only); convert_* run in job processes. Every output is
checked with the ONNX checker, run once in ONNX Runtime and smoke-tested against its parent
before it may become a variant.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from backends.convert_job import ConversionOutput, Step
from backends.encoder_classifier_calibration import calibration_samples
from backends.hf.folder import copy_companions
from backends.onnxrt.torch_to_onnx import MODEL_FILE, export_task, to_onnx
from backends.preflight import Problem
from backends.registry import main_file
from catalog.calibration import checked_file, kept_path
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.sources import get_source
from worker.context import JobContext
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS, ENCODER_TASK

log = logging.getLogger(__name__)

QUANTIZED = ("INT8", "INT4")


def variant_task(variant: Variant) -> str | None:
    """The task of a variant's model: its source's, or read from an imported graph's inputs."""
    from backends.onnxrt.import_check import guess_task

    task = get_source(variant.source_id).task
    if task in ENCODER_CLASSIFIER_TASKS or variant.format != "onnx":
        return task
    return guess_task(variant.metadata.get("inputs", [])) or task


def _model_folder(path: Path) -> Path:
    return path.parent if path.is_file() else path


# ------------------------------------------------------------------------------ pre-flight


def validate_export(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    folder = main_file(variant)
    if not (folder / "config.json").is_file():
        return [Problem("error", "This Hugging Face form has no config.json; re-import it.")]
    if "auto_map" in json.loads((folder / "config.json").read_text()) and not variant.metadata.get("trust_remote_code"):
        return [Problem("error", "This model ships its own code (auto_map); re-import it with remote code allowed "
                                 "if you trust it.")]
    try:
        export_task(folder)
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    return []


def _tensor_input_problems(variant: Variant) -> list[Problem]:
    if variant_task(variant) not in ENCODER_CLASSIFIER_TASKS:
        return [Problem("error", "This ONNX model is neither an encoder nor an image classifier the catalog knows "
                                 "(a text-generation graph or unknown inputs); these quantizers are for encoders "
                                 "and classifiers.")]
    if variant.precision in QUANTIZED or str(variant.precision).startswith(QUANTIZED):
        return [Problem("error", f"This variant is already {variant.precision}; quantize its float parent instead "
                                 "(quantizing twice compounds the error).")]
    return []


def validate_quantize_dynamic(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    return _tensor_input_problems(variant)


def validate_convert_fp16(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _tensor_input_problems(variant)
    if not problems and variant.precision == "F16":
        return [Problem("error", "This variant is already FP16.")]
    return problems


def validate_quantize_int4(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _tensor_input_problems(variant)
    if options["algorithm"] == "HQQ" and options["symmetric"]:
        problems.append(Problem("error", "HQQ always fits a zero point per block, so it cannot be symmetric; "
                                         "turn 'symmetric' off (--no-symmetric on the CLI) or choose RTN."))
    return problems


def validate_quantize_static(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _tensor_input_problems(variant)
    if problems:
        return problems
    try:
        calibration_feeds(variant, options)
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    return []


def plan_quantize_static(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """One step; an uploaded calibration file is kept in the data root under its content hash
    (copied when the plan is submitted), so the variant's identity follows the data, not the
    upload's name."""
    value = options["calibration"]
    path = checked_file(value)
    if path is not None:
        value = str(kept_path(path))
    return [Step("onnxrt.quantize_static", dict(options, calibration=value), input_variant_id=variant.id)]


# ------------------------------------------------------------------------------ calibration data


def calibration_feeds(variant: Variant, options: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    """One feed per calibration sample, checked against the model's inputs."""
    from backends.onnxrt.quantize import check_feeds

    names = [i["name"] for i in variant.metadata.get("inputs", [])]
    feeds = calibration_samples(variant_task(variant) or ENCODER_TASK, _model_folder(main_file(variant)),
                                options["calibration"], options["samples"], names or None)
    check_feeds(main_file(variant), feeds)
    return feeds


# ------------------------------------------------------------------------------ the work


def check_and_describe(model_path: Path) -> dict[str, Any]:
    """The ONNX checker and the graph's facts, as every ONNX variant records them."""
    from backends.onnxrt.import_check import check_onnx

    try:
        facts = check_onnx(model_path)
    except InvalidInputError as exc:
        raise InvalidInputError(f"The result failed its check: {exc} It was not published.") from exc
    return {k: facts[k] for k in ("opset", "inputs", "outputs", "ops", "parameters", "producer")}


def _finish(ctx: JobContext, parent: Variant, parent_path: Path, out: Path, precision: str,
            recipe_facts: dict[str, Any]) -> ConversionOutput:
    ctx.progress(0.6, "ONNX checker")
    facts = check_and_describe(out / MODEL_FILE)
    task = variant_task(parent) if parent.format == "onnx" else export_task(parent_path)
    copy_companions(_model_folder(parent_path), out)  # the tokenizer the smoke test and users need
    return ConversionOutput(precision, {"task": task, **recipe_facts, **facts})


def convert_export(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                   extras: dict[str, Variant]) -> ConversionOutput:
    ctx.progress(0.1, f"torch.onnx export (opset {options['opset']})")
    facts = to_onnx(path, out, options["opset"])
    ctx.log(f"exported {facts['task']} model; dynamic axes {facts['dynamic_axes']}")
    return _finish(ctx, parent, path, out, "F32", facts)


def convert_quantize_dynamic(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                             extras: dict[str, Variant]) -> ConversionOutput:
    from backends.onnxrt.quantize import quantize_dynamic_int8

    ctx.progress(0.1, "dynamic INT8 quantization")
    facts = quantize_dynamic_int8(path, out / MODEL_FILE, options["per_channel"])
    return _finish(ctx, parent, path, out, "INT8 dynamic", facts)


def convert_quantize_static(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                            extras: dict[str, Variant]) -> ConversionOutput:
    from backends.onnxrt.quantize import quantize_static_int8

    feeds = calibration_feeds(parent, options)
    ctx.progress(0.1, f"static INT8 ({options['format']}): calibrating on {len(feeds)} samples "
                      f"with {options['method']}")
    facts = quantize_static_int8(path, out / MODEL_FILE, feeds, options["format"], options["method"],
                                 options["per_channel"])
    facts["calibration"] = "shipped" if options["calibration"] == "shipped" else Path(options["calibration"]).name
    return _finish(ctx, parent, path, out, f"INT8 static {options['format']}", facts)


def convert_quantize_int4(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                          extras: dict[str, Variant]) -> ConversionOutput:
    from backends.onnxrt.quantize import quantize_int4_weights

    ctx.progress(0.1, f"INT4 weight-only ({options['algorithm']}, blocks of {options['block_size']})")
    facts = quantize_int4_weights(path, out / MODEL_FILE, options["algorithm"], int(options["block_size"]),
                                  options["symmetric"])
    return _finish(ctx, parent, path, out, f"INT4 {options['algorithm']}", facts)


def convert_convert_fp16(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                         extras: dict[str, Variant]) -> ConversionOutput:
    from backends.onnxrt.quantize import convert_fp16

    ctx.progress(0.1, "float16 conversion")
    facts = convert_fp16(path, out / MODEL_FILE)
    return _finish(ctx, parent, path, out, "F16", facts)
