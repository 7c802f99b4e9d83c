"""OpenVINO conversions as jobs: pre-flight checks (validate_*), plans and the job hooks (convert_*).
Declarations are in declaration.py. Toolkits (optimum-intel, NNCF, OpenVINO) are imported only
inside the hooks; validate_* run in the app and read only cheap facts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backends.convert_job import ConversionOutput, Step
from backends.openvino import llm
from backends.openvino.weights import MODES, group_size_problems, option_problems, uses_data
from backends.preflight import Problem
from backends.registry import main_file
from catalog.calibration import checked_file, kept_path
from catalog.errors import InvalidInputError
from catalog.records import Variant
from worker.context import JobContext
from workloads.datasets import calibration_sentences, read_calibration_lines

log = logging.getLogger(__name__)

FLOAT_LABELS = {"fp32": "F32", "fp16": "F16"}
WEIGHT_FORMAT_MODES = {"int8": "INT8_ASYM", "int4": "INT4_ASYM"}
INT4_GROUP = 64  # the demo's 576 and 1536 divide by 64, not by 128


class OpenVINOFailed(InvalidInputError):
    pass


# ------------------------------------------------------------------------------ pre-flight


def _llm_problems(variant: Variant) -> list[Problem]:
    config_file = main_file(variant) / "config.json"
    if not config_file.is_file():
        return [Problem("error", "This Hugging Face form has no config.json; re-import it.")]
    config = json.loads(config_file.read_text())
    model_type = config.get("model_type") or "(none given)"
    if model_type not in llm.exportable_model_types():
        return [Problem("error", f"optimum-intel cannot export the architecture {model_type} for text generation; "
                                 "it cannot become OpenVINO IR here.")]
    if "auto_map" in config and not variant.metadata.get("trust_remote_code"):
        return [Problem("error", "This model ships its own code (auto_map); re-import it with remote code allowed "
                                 "if you trust it.")]
    return []


def validate_export_llm(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _llm_problems(variant)
    if problems or options["weight_format"] != "int4":
        return problems
    config = llm.read_config(main_file(variant))
    return [Problem("error", p) for p in group_size_problems(llm.hidden_sizes(config), INT4_GROUP, "error")]


def validate_compress_weights(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    problems = _llm_problems(variant)
    if problems:
        return problems
    found = option_problems(options)
    if MODES[options["mode"]][1] == 4:
        config = llm.read_config(main_file(variant))
        found += group_size_problems(llm.hidden_sizes(config), int(options["group_size"]),
                                     options["group_size_fallback"])
    if uses_data(options):
        try:
            _calibration_lines(options["calibration"])
        except InvalidInputError as exc:
            found.append(str(exc))
    return [Problem("error", p) for p in found]


def plan_compress_weights(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """One step. An uploaded calibration text is kept under its content hash (copied at submit),
    so the variant's identity follows the text, not the upload's name; data-free runs record no
    calibration at all, so the same recipe is recognised whatever the form held."""
    value = options["calibration"] if uses_data(options) else "shipped"
    path = checked_file(value)
    if path is not None:
        value = str(kept_path(path))
    return [Step("openvino.compress_weights", dict(options, calibration=value), input_variant_id=variant.id)]


def _calibration_lines(value: str) -> list[str]:
    path = checked_file(value)
    if path is None:
        return list(calibration_sentences())
    if path.suffix.lower() != ".txt":
        raise InvalidInputError("Weight compression calibrates on text, but the calibration file is not a .txt file; "
                                "upload UTF-8 text with one sentence per line.")
    return read_calibration_lines(path)


# ------------------------------------------------------------------------------ the work


def _finish_llm(ctx: JobContext, out: Path, precision: str, facts: dict[str, Any]) -> ConversionOutput:
    ctx.progress(0.62, "OpenVINO: tokenizer and detokenizer IRs for OpenVINO GenAI")
    llm.write_tokenizer_irs(out)
    table = llm.compression_table(out)
    if table:
        ctx.log("NNCF recorded: " + ", ".join(f"{k}={v}" for k, v in sorted(table.items())))
    ctx.progress(0.68, "OpenVINO: running the result once")
    from backends.openvino.llm_runner import generate_once

    try:
        sample = generate_once(out)
    except RuntimeError as exc:
        raise OpenVINOFailed(f"The result does not run in OpenVINO GenAI ({str(exc).strip()[:160]}); it was not "
                             "published.") from exc
    ctx.log(f"OpenVINO GenAI first run: {sample!r}")
    return ConversionOutput(precision, {**facts, "nncf": table, "device": "CPU"})


def convert_export_llm(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                       extras: dict[str, Variant]) -> ConversionOutput:
    weight_format = options["weight_format"]
    remote = bool(parent.metadata.get("trust_remote_code"))
    ctx.progress(0.05, f"OpenVINO: exporting with {weight_format} weights")
    try:
        if weight_format in FLOAT_LABELS:
            llm.export_float(path, out, weight_format, remote)
        else:
            mode = WEIGHT_FORMAT_MODES[weight_format]
            config = llm.quantization_config(_weight_format_options(mode), path, None)
            llm.export_compressed(path, out, config, remote)
    except (RuntimeError, ValueError, OSError) as exc:
        raise OpenVINOFailed(f"optimum-intel could not export this model ({type(exc).__name__}: "
                             f"{str(exc).strip()[:160]}); see the job log.") from exc
    label = FLOAT_LABELS.get(weight_format) or MODES[WEIGHT_FORMAT_MODES[weight_format]][3]
    return _finish_llm(ctx, out, label, {"weight_format": weight_format})


def _weight_format_options(mode: str) -> dict[str, Any]:
    """What --weight-format int4/int8 means here: asymmetric, every layer's ratio 1, group 64."""
    return {"mode": mode, "group_size": str(INT4_GROUP), "ratio": 1.0, "all_layers": False,
            "backup_precision": "int8_asym", "group_size_fallback": "error"}


def convert_compress_weights(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                             extras: dict[str, Variant]) -> ConversionOutput:
    lines = _calibration_lines(options["calibration"])[:max(options["samples"], 1)] if uses_data(options) else None
    methods = [m for m in ("awq", "scale_estimation", "gptq", "lora_correction") if options[m]]
    how = f" with {', '.join(methods)} on {len(lines or [])} lines" if methods else ", data-free"
    ctx.progress(0.05, f"NNCF weight compression: {options['mode']}{how}")
    try:
        llm.export_compressed(path, out, llm.quantization_config(options, path, lines),
                              bool(parent.metadata.get("trust_remote_code")))
    except (RuntimeError, ValueError, OSError) as exc:
        raise OpenVINOFailed(f"NNCF weight compression failed ({type(exc).__name__}: {str(exc).strip()[:160]}); "
                             "see the job log.") from exc
    facts = {"mode": options["mode"], "data_aware": methods,
             "calibration": None if not methods else ("shipped" if options["calibration"] == "shipped"
                                                      else Path(options["calibration"]).name)}
    label = MODES[options["mode"]][3] + (" " + "+".join(m.upper() for m in methods) if methods else "")
    return _finish_llm(ctx, out, label, facts)
