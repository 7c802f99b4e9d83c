"""Encoders and image classifiers in OpenVINO: an ONNX graph to IR (FP32, or FP16 weights), and
NNCF post-training INT8 of that IR on calibration data, optionally with accuracy control
(`nncf.quantize_with_accuracy_control`: layers go back to float until the held-out accuracy drop
is within the bound; for classifiers, whose digits test set has labels)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from backends.convert_job import ConversionOutput, Step
from backends.encoder_classifier_calibration import calibration_samples
from backends.hf.folder import copy_companions
from backends.preflight import Problem
from backends.registry import main_file
from catalog.calibration import checked_file, kept_path
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.sources import get_source
from worker.context import JobContext
from workloads.datasets import digits
from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, ENCODER_CLASSIFIER_TASKS, ENCODER_TASK

log = logging.getLogger(__name__)

MODEL_XML = "model.xml"
VALIDATION_SAMPLES = 200


def _task(variant: Variant) -> str | None:
    return variant.metadata.get("task") or get_source(variant.source_id).task


def _folder(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _input_problems(variant: Variant, kind: str) -> list[Problem]:
    if _task(variant) not in ENCODER_CLASSIFIER_TASKS:
        return [Problem("error", f"This {kind} is neither an encoder nor an image classifier the catalog knows; "
                                 "LLMs become OpenVINO IR from their Hugging Face form.")]
    return []


# Operator domains OpenVINO's ONNX front end knows (ONNX's own, ONNX Runtime's contrib ops and
# OpenVINO's); an op from any other domain is a custom op with no conversion rule, refused before a
# job. An op of a known domain that it cannot convert is named by conversion_failure in the job.
CONVERTIBLE_DOMAINS = ("ai.onnx", "", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft",
                       "org.openvinotoolkit")
_NO_RULE = re.compile(r"No conversion rule found for operations:\s*(?P<ops>[^\n]+)")
_FAILED_OP = re.compile(r"^-- (?P<op>\S+) with a message:", re.MULTILINE)


def validate_convert_onnx(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _input_problems(variant, "ONNX model")
    custom = sorted(d for d in (variant.metadata.get("opset") or {}) if d not in CONVERTIBLE_DOMAINS)
    if not problems and custom:
        problems.append(Problem("error", f"This ONNX model uses operators from the custom domain {custom[0]}, which "
                                         "OpenVINO has no conversion for; run it with ONNX Runtime instead, or export "
                                         "it again with standard ONNX operators."))
    return problems


def conversion_failure(name: str, exc: BaseException) -> str:
    """One sentence for openvino.convert_model's refusal, whose text is C++ check output
    ("Check 'false' failed at src/frontends/..."): the operators it could not convert, or its
    first line that says something, and what to do."""
    text = str(exc)
    ops = [op.strip() for op in found.group("ops").split(",")] if (found := _NO_RULE.search(text)) else []
    ops += [m.group("op") for m in _FAILED_OP.finditer(text)]
    if ops:
        ops = list(dict.fromkeys(ops))
        which = f"operator {ops[0]}" if len(ops) == 1 else f"operators {', '.join(ops)}"
        return (f"OpenVINO cannot convert {name}: it has no conversion for the {which} (custom or newer ONNX "
                "operators); run the model with ONNX Runtime instead, or export it again with standard ONNX "
                "operators.")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = next((line for line in lines if not line.startswith("Check '") and "failed with" not in line),
                type(exc).__name__)
    return f"OpenVINO could not convert {name} ({said[:160].rstrip('.')}); the job log has its full output."


def validate_quantize_static(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _input_problems(variant, "IR")
    if problems:
        return problems
    if str(variant.precision).startswith("INT"):
        return [Problem("error", f"This variant is already {variant.precision}; quantize its float parent instead.")]
    if options["max_accuracy_drop"] > 0 and _task(variant) != CLASSIFIER_TASK:
        return [Problem("error", "Accuracy control needs labelled held-out data, which only the image classifier "
                                 "has here; set the maximum accuracy drop to 0 for an encoder.")]
    try:
        calibration_samples(_task(variant) or ENCODER_TASK, _folder(main_file(variant)), options["calibration"],
                            options["samples"])
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    return []


def plan_quantize_static(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """One step; an uploaded calibration file is kept under its content hash (copied at submit)."""
    value = options["calibration"]
    path = checked_file(value)
    if path is not None:
        value = str(kept_path(path))
    return [Step("openvino.quantize_static", dict(options, calibration=value), input_variant_id=variant.id)]


def _describe(xml: Path) -> dict[str, Any]:
    import openvino as ov

    model = ov.Core().read_model(xml)
    return {"inputs": [{"name": i.any_name, "shape": str(i.get_partial_shape()), "type": str(i.get_element_type())}
                       for i in model.inputs],
            "outputs": [{"name": o.any_name, "shape": str(o.get_partial_shape())} for o in model.outputs],
            "ops": sorted({op.get_type_name() for op in model.get_ops()})}


def convert_convert_onnx(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                         extras: dict[str, Variant]) -> ConversionOutput:
    import openvino as ov

    fp16 = options["precision"] == "fp16"
    ctx.progress(0.1, f"OpenVINO: converting {path.name} to IR ({options['precision']})")
    try:
        model = ov.convert_model(str(path))
        ov.save_model(model, out / MODEL_XML, compress_to_fp16=fp16)
    except Exception as exc:  # OpConversionFailure and its siblings derive from Exception alone
        ctx.log(f"openvino.convert_model failed: {exc}")
        raise InvalidInputError(conversion_failure(path.name, exc)) from exc
    copy_companions(_folder(path), out)
    facts = _describe(out / MODEL_XML)
    ctx.log(f"IR inputs: {[i['name'] for i in facts['inputs']]}")
    return ConversionOutput("F16" if fp16 else "F32", {"task": _task(parent), "device": "CPU", **facts})


def _image_feed(item: tuple[np.ndarray, int]) -> dict[str, np.ndarray]:
    return {"pixel_values": item[0][None]}


def _accuracy(compiled: Any, items: Any) -> float:
    """Top-1 accuracy over (image, label) pairs: NNCF calls this on the float and quantized models."""
    hits = [int(compiled(_image_feed(item))[compiled.outputs[0]].argmax()) == int(item[1]) for item in items]
    return float(np.mean(hits))


def convert_quantize_static(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                            extras: dict[str, Variant]) -> ConversionOutput:
    import nncf
    import openvino as ov

    task = _task(parent) or ENCODER_TASK
    model = ov.Core().read_model(path)
    names = [i.any_name for i in model.inputs]
    feeds = calibration_samples(task, _folder(path), options["calibration"], options["samples"], names)
    calibration = nncf.Dataset(feeds)
    model_type = nncf.ModelType.TRANSFORMER if task == ENCODER_TASK else None
    drop = options["max_accuracy_drop"]
    ctx.progress(0.1, f"NNCF: static INT8 on {len(feeds)} samples" + (f", accuracy drop ≤ {drop}" if drop else ""))
    facts: dict[str, Any] = {"samples": len(feeds), "preset": options["preset"],
                             "calibration": "shipped" if options["calibration"] == "shipped"
                             else Path(options["calibration"]).name}
    preset = nncf.QuantizationPreset(options["preset"].lower())
    try:
        quantized = _quantize(model, calibration, feeds, options, preset, model_type)
    except (RuntimeError, ValueError, nncf.errors.ValidationError) as exc:
        raise InvalidInputError(f"NNCF could not quantize this model ({str(exc).strip()[:160]}); try the other "
                                "preset or more samples.") from exc
    if drop > 0:
        facts["max_accuracy_drop"] = drop
    ov.save_model(quantized, out / MODEL_XML, compress_to_fp16=False)
    copy_companions(_folder(path), out)
    facts |= _describe(out / MODEL_XML)
    return ConversionOutput(f"INT8 {options['preset'].lower()}", {"task": task, "device": "CPU", **facts})


def _quantize(model: Any, calibration: Any, feeds: list, options: dict[str, Any], preset: Any, model_type: Any) -> Any:
    import nncf

    drop = options["max_accuracy_drop"]
    if drop > 0:
        data = digits()
        pairs = list(zip(data.test_images[:VALIDATION_SAMPLES], data.test_labels[:VALIDATION_SAMPLES], strict=True))
        return nncf.quantize_with_accuracy_control(
            model, calibration, nncf.Dataset(pairs, _image_feed), validation_fn=_accuracy, max_drop=drop,
            drop_type=nncf.DropType.ABSOLUTE, preset=preset, subset_size=len(feeds))
    return nncf.quantize(model, calibration, preset=preset, model_type=model_type, subset_size=len(feeds))
