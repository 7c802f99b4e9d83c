"""The QNN conversions as jobs: an ONNX FP32 encoder or classifier -> a QDQ model for the HTP
backend (with its node coverage and its QNN quantization-overrides JSON), and a QDQ model -> an
EPContext model holding the context binary for an HTP architecture or SoC.

validate_* run in the app (cheap reads only); convert_* in job processes. Declarations are in
declaration.py.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from backends.convert_job import ConversionOutput, Step
from backends.encoder_classifier_calibration import calibration_samples
from backends.hf.folder import copy_companions
from backends.onnxrt.encoder_classifier import check_and_describe
from backends.preflight import Problem
from backends.qnn import ep, overrides
from backends.qnn import quantize as qdq
from backends.registry import main_file
from catalog.calibration import checked_file, kept_path
from catalog.errors import InvalidInputError
from catalog.records import Variant
from catalog.sources import get_source
from worker.context import JobContext
from workloads.encoder_classifier_inputs import ENCODER_CLASSIFIER_TASKS, ENCODER_TASK

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CONTEXT_FILE = "model_ctx.onnx"
FLOAT_PRECISIONS = ("F32", "F16")
# HTP architectures the QNN EP compiles for (its htp_arch option; "default" lets the SDK choose).
# Each is compiled here and, on x86_64, run by the simulator; none has run on a device here.
HTP_ARCHS = ("default", "68", "69", "73", "75", "79", "81")
SIMULATOR_ARCH = "default"
# Snapdragon SoCs by name -> (the QNN SDK's soc_model number, HTP architecture). The names are
# checked against the SDK's own list (libQnnHtp.so); the numbers are the QNN SDK documentation's.
SOCS = {"SM8450": (36, "69"), "SM8550": (43, "73"), "SM8650": (57, "75"), "SC8380XP": (60, "73"),
        "SM8750": (69, "79")}
FP32_ON_HTP = ("This model is {precision}: the QNN HTP backend runs quantized models (an FP32 model failed on the "
               "HTP simulator with QNN_COMMON_ERROR_MEM_ALLOC), so make a QDQ variant with 'ONNX → QDQ for the "
               "QNN HTP' first and compile that one.")


def _task(variant: Variant) -> str | None:
    return variant.metadata.get("task") or get_source(variant.source_id).task


def _folder(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _names(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,\s]+", text or "") if t.strip()]


# ------------------------------------------------------------------------------ pre-flight


def validate_quantize(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    if _task(variant) not in ENCODER_CLASSIFIER_TASKS:
        return [Problem("error", "This ONNX model is neither an encoder nor an image classifier the catalog knows; "
                                 "QNN QDQ conversion takes those.")]
    if variant.precision not in FLOAT_PRECISIONS:
        return [Problem("error", f"This variant is already {variant.precision}; quantize its FP32 parent for the "
                                 "HTP instead (quantizing twice compounds the error).")]
    inputs = variant.metadata.get("inputs", [])
    try:
        shapes = qdq.parse_shapes(options["fixed_shapes"])
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    problem = qdq.shape_problem(inputs, shapes)
    if problem:
        return [Problem("error", problem)]
    listing = "; ".join(f"{k} ({', '.join(v)})" for k, v in qdq.dynamic_axes(inputs).items() if v)
    problems = [Problem("warning", f"Dynamic axes fixed for the HTP: {listing} -> "
                                   f"{', '.join(f'{k}={v}' for k, v in shapes.items())}.")] if listing else []
    if options["weight_type"] == "int4" and options["activation_type"] != "uint16":
        problems.append(Problem("warning", "4-bit weights with 8-bit activations lose the most accuracy; uint16 "
                                           "activations are the usual pair for int4 weights on the HTP."))
    try:
        calibration_samples(_task(variant) or ENCODER_TASK, _folder(main_file(variant)), options["calibration"],
                            1, [i["name"] for i in inputs] or None)
        _check_calibration_shape(variant, options, shapes)
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    return problems


def _check_calibration_shape(variant: Variant, options: dict[str, Any], shapes: dict[str, int]) -> None:
    """An uploaded image array must have the model's image shape (the batch and sequence axes are fitted)."""
    from backends.onnxrt.quantize import check_feeds

    if options["calibration"] in ("", "shipped"):
        return
    names = [i["name"] for i in variant.metadata.get("inputs", [])]
    feeds = calibration_samples(_task(variant) or ENCODER_TASK, _folder(main_file(variant)), options["calibration"],
                                1, names or None)
    check_feeds(main_file(variant), feeds)


def plan_quantize(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """One step; an uploaded calibration file is kept under its content hash (copied at submit)."""
    path = checked_file(options["calibration"])
    kept = options if path is None else dict(options, calibration=str(kept_path(path)))
    return [Step("qnn.quantize", kept, input_variant_id=variant.id)]


@functools.cache
def sdk_soc_names() -> frozenset[str]:
    """The SoC names the bundled QNN HTP library knows (read from the library, not copied by hand)."""
    try:
        import onnxruntime_qnn

        data = Path(onnxruntime_qnn.get_qnn_htp_path()).read_bytes()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(m.decode() for m in re.findall(rb"(?<![A-Z0-9])((?:SM|SC|QCS|SA|SXR|QCM)\d{4}[A-Z]{0,3})\x00",
                                                    data))


def target_of(options: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The QNN EP options of a context binary's target, and its architecture."""
    soc = options["soc"].strip().upper()
    if soc:
        number, arch = SOCS[soc]
        return {"soc_model": str(number)}, arch
    arch = options["htp_arch"]
    return ({} if arch == SIMULATOR_ARCH else {"htp_arch": arch}), arch


def validate_context_binary(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    if variant.precision in FLOAT_PRECISIONS:
        return [Problem("error", FP32_ON_HTP.format(precision=variant.precision))]
    if variant.conversion != "quantize" or variant.backend != "qnn":
        return [Problem("error", "Only a QDQ variant made for the QNN HTP (fixed shapes, QNN's quantization "
                                 "rules) compiles to a context binary; make one with 'ONNX → QDQ for the QNN "
                                 "HTP' first.")]
    soc = options["soc"].strip().upper()
    if soc:
        known = sdk_soc_names()
        if soc not in known:
            return [Problem("error", f"The QNN SDK {ep.sdk_version()} knows no SoC named {soc}; give one such as "
                                     f"{', '.join(sorted(SOCS))}, or an HTP architecture instead.")]
        if soc not in SOCS:
            return [Problem("error", f"The QNN SDK knows {soc}, but its soc_model number is not in this catalog's "
                                     f"table ({', '.join(sorted(SOCS))}); choose its HTP architecture instead.")]
        if options["htp_arch"] not in (SIMULATOR_ARCH, SOCS[soc][1]):
            return [Problem("error", f"{soc} has HTP v{SOCS[soc][1]}, not v{options['htp_arch']}; leave the "
                                     "architecture at default or choose the SoC's own.")]
    _, arch = target_of(options)
    if arch != SIMULATOR_ARCH:
        return [Problem("warning", f"Compiled here for HTP v{arch}: the simulator runs it for the smoke test, but "
                                   "it is not run on a device here.")]
    return []


# ------------------------------------------------------------------------------ the work


def convert_quantize(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                     extras: dict[str, Variant]) -> ConversionOutput:
    task = _task(parent) or ENCODER_TASK
    shapes = qdq.parse_shapes(options["fixed_shapes"])
    work = out.parent / "qnn-work"
    work.mkdir(exist_ok=True)
    ctx.progress(0.05, f"QNN: fixing input shapes {shapes}")
    fixed = work / "fixed.onnx"
    fixed_shapes = qdq.fix_shapes(path, fixed, shapes)
    names = list(fixed_shapes)
    feeds = calibration_samples(task, _folder(path), options["calibration"], options["samples"], names)
    feeds = [qdq.fit_feed(f, fixed_shapes) for f in feeds]
    sixteen = qdq.sixteen_bit_overrides(fixed, _names(options["keep_16bit_ops"]), _names(options["keep_16bit_tensors"]))
    ctx.progress(0.15, f"QNN QDQ: {options['activation_type']} activations, {options['weight_type']} weights, "
                       f"calibrating on {len(feeds)} samples")
    facts = qdq.quantize_qdq(fixed, out / MODEL_FILE, feeds, options["activation_type"], options["weight_type"],
                             options["per_channel"], sixteen)
    shutil.rmtree(work, ignore_errors=True)
    ctx.progress(0.4, "QNN: node coverage (CPU fallback on)")
    report = ep.coverage(out / MODEL_FILE)
    ctx.log(f"node coverage on the {report['device']}: {report['htp_nodes']} of {report['nodes']} nodes on the HTP; "
            f"on the CPU: {report['cpu_op_types'] or 'none'}")
    if not options["cpu_fallback"]:
        ctx.progress(0.5, "QNN: loading with CPU fallback off")
        ep.open_without_fallback(out / MODEL_FILE)  # one sentence naming the ops the HTP cannot take
    facts["encodings"] = overrides.write(out / MODEL_FILE, out / overrides.OVERRIDES_FILE)
    facts |= {"fixed_shapes": fixed_shapes, "cpu_fallback": options["cpu_fallback"], "coverage": report,
              "qnn_sdk": ep.sdk_version(), "device": report["device"],
              "calibration": "shipped" if options["calibration"] in ("", "shipped")
              else Path(options["calibration"]).name}
    facts["breakdown"] = coverage_breakdown(report)
    if options["keep_16bit_ops"] or options["keep_16bit_tensors"]:
        facts["keep_16bit"] = {"ops": _names(options["keep_16bit_ops"]),
                               "tensors": _names(options["keep_16bit_tensors"])}
    copy_companions(_folder(path), out)
    facts |= check_and_describe(out / MODEL_FILE)
    bits = {"uint8": "8", "uint16": "16"}[options["activation_type"]]
    weights = options["weight_type"].removeprefix("u").removeprefix("int")
    return ConversionOutput(f"QDQ A{bits}W{weights}", {"task": task, **facts})


def coverage_breakdown(report: dict[str, Any]) -> dict[str, Any]:
    """The node coverage as the Model page's breakdown: nodes per op type on the HTP and on the CPU."""
    htp, cpu = report["device"], "CPU (fallback)"
    rows = [{"op type": op, htp: n["htp"], cpu: n["cpu"]}
            for op, n in sorted(report["by_op_type"].items(), key=lambda kv: -(kv[1]["htp"] + kv[1]["cpu"]))]
    caption = (f"Node coverage with CPU fallback on: {report['htp_nodes']} of {report['nodes']} nodes on the {htp} "
               f"({report['htp_share']:.1%}), {report['cpu_nodes']} on the CPU"
               + (f"; the HTP cannot take {', '.join(report['blocking_op_types'])}" if report["blocking_op_types"]
                  else "; the CPU kept only graph-boundary quantize/dequantize nodes, which the HTP takes when "
                       "fallback is off" if report["cpu_nodes"] else "") + ".")
    return {"title": f"Node coverage on the {htp}", "category": "op type", "rows": rows, "caption": caption,
            "details": [{"node": n["name"], "op type": n["op_type"], "runs on": "CPU"}
                        for n in report["fallback_nodes"]]}


def convert_context_binary(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                           extras: dict[str, Variant]) -> ConversionOutput:
    import time

    provider, arch = target_of(options)
    target = f"SoC {options['soc'].upper()} (HTP v{arch})" if options["soc"] else (
        "the simulator's default architecture" if arch == SIMULATOR_ARCH else f"HTP v{arch}")
    ctx.progress(0.1, f"QNN: compiling the context binary for {target}")
    facts = ep.compile_context(path, out / CONTEXT_FILE, provider, embed=options["embed"])
    start = time.perf_counter()
    ep.session(out / CONTEXT_FILE, fallback=False)
    facts["load_s"] = round(time.perf_counter() - start, 4)
    facts |= ep.epcontext_facts(out / CONTEXT_FILE)
    ctx.log(f"context model written in {facts['compile_s']} s; loads in {facts['load_s']} s")
    run_here = (f"compiled here and run on the {ep.device_label()}" if arch == SIMULATOR_ARCH else
                f"compiled here for HTP v{arch}, not run on a device (a Snapdragon with HTP v{arch}"
                + (f", the {options['soc'].upper()}" if options["soc"] else "")
                + " and onnxruntime-qnn run it; here only the simulator ran it)")
    copy_companions(_folder(path), out)
    facts |= {"htp_arch": arch, "soc": options["soc"].upper() or None, "qnn_provider_options": provider,
              "run_here": run_here, "qnn_sdk": ep.sdk_version(), "task": _task(parent),
              "parent_precision": parent.precision}
    return ConversionOutput(f"{parent.precision} context v{arch}" if arch != SIMULATOR_ARCH
                            else f"{parent.precision} context", facts)
