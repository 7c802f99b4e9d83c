"""llama.cpp / GGUF conversions: pre-flight checks, plans and the work itself.

Declarations are in declaration.py. Toolkits (llama.cpp tools, transformers) are used only
inside the functions below, which run in job processes; validate_* run in the app and only read
cheap facts (the tools' own lists, GGUF metadata).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from backends.convert_job import ConversionOutput, Step
from backends.llamacpp import tools as llamacpp_tools
from backends.llamacpp.quant_types import FLOAT_TYPES, IQ_TYPES, K_TYPES
from backends.preflight import Problem
from backends.registry import main_file
from backends.tools import run_tool
from catalog.calibration import SHIPPED, checked_file, kept_path
from catalog.errors import InvalidInputError
from catalog.records import Source, Variant
from catalog.sources import get_source
from worker.context import JobContext
from workloads.datasets import CALIBRATION_TEXT

log = logging.getLogger(__name__)

SHIPPED_CALIBRATION = CALIBRATION_TEXT
THREADS = max(1, min(4, os.cpu_count() or 1))


class LlamaCppFailed(InvalidInputError):
    pass


# ------------------------------------------------------------------------------ pre-flight


def _tool_problem() -> Problem | None:
    if not llamacpp_tools.tools_ready():
        return Problem("error", "The llama.cpp tools are not built on this server; run the README's setup "
                                "command, then try again.")
    return None


def calibration_path(value: str) -> Path:
    """The calibration text to use; InvalidInputError unless it is a readable UTF-8 text file inside
    the allowed folders and under the size limit."""
    path = checked_file(value)
    if path is None:
        return SHIPPED_CALIBRATION
    with open(path, "rb") as fh:
        raw = fh.read(2**20)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"The calibration file {path.name} is not UTF-8 text; upload a plain .txt "
                                "file.") from None
    if "\x00" in text or len(text.split()) < 200:
        raise InvalidInputError(f"The calibration file {path.name} is not usable text (binary, or fewer than "
                                "200 words); upload a longer plain-text file.")
    return path


def calibration_hash(value: str) -> str:
    return hashlib.sha256(calibration_path(value).read_bytes()).hexdigest()[:16]


def _embedding_length(variant: Variant) -> int | None:
    if variant.format == "gguf":
        return variant.metadata.get("embedding_length")
    return None


def validate_quantize(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    if (problem := _tool_problem()) is not None:
        return [problem]
    problems: list[Problem] = []
    offered = llamacpp_tools.quantize_types()
    needs_matrix = llamacpp_tools.types_requiring_imatrix()
    for qtype in options["types"]:
        if qtype not in offered:
            problems.append(Problem("error", f"The installed llama.cpp does not offer {qtype}; pick another type."))
        if qtype in needs_matrix and options["imatrix"] == "never":
            problems.append(Problem("error", f"{qtype} needs an importance matrix (llama.cpp refuses it "
                                             "without one); set imatrix to auto or always."))
    if options["imatrix"] != "never" and (options["imatrix"] == "always"
                                          or any(t in needs_matrix for t in options["types"])):
        try:
            calibration_path(options["calibration"])
        except InvalidInputError as exc:
            problems.append(Problem("error", str(exc)))
    if (unused := _unused_calibration(options, needs_matrix)) is not None:
        problems.append(unused)
    if variant.format == "gguf" and variant.precision not in FLOAT_TYPES:
        if not options["allow_requantize"]:
            problems.append(Problem("error", f"This model is already quantized ({variant.precision}); tick "
                                             "“allow requantize” (--allow-requantize on the command line), or "
                                             "start from an F16/F32 form."))
        else:
            problems.append(Problem("warning", f"Requantizing {variant.precision} compounds its error: expect "
                                               "lower quality than quantizing from F16."))
    hidden = _embedding_length(variant)
    block_types = [t for t in options["types"] if t in K_TYPES or (t in IQ_TYPES and t != "IQ4_NL")]
    if hidden and hidden % 256 and block_types:
        problems.append(Problem("warning", f"Rows of {hidden} values do not divide into 256-value blocks, so "
                                f"{', '.join(block_types)} will fall back to other types for most tensors; the "
                                "effective types are recorded."))
    if variant.format == "hf":
        problems += validate_convert_hf(variant, {"outtype": "f16"})
    return problems


def _unused_calibration(options: dict[str, Any], needs_matrix: set[str]) -> Problem | None:
    """A warning when a calibration text was given (an upload, a path) that some type will be
    quantized without: imatrix auto makes a matrix only for the types llama.cpp refuses without
    one, so a Q4_K_M alone would drop the upload without a word. imatrix always uses it."""
    if options["calibration"] == SHIPPED or options["imatrix"] == "always":
        return None
    never = options["imatrix"] == "never"
    without = [t for t in options["types"] if never or t not in needs_matrix]
    if not without:
        return None
    with_it = [t for t in options["types"] if t not in without]
    fix = "set imatrix to always to quantize every type with a matrix made from it"
    if with_it:
        return Problem("warning", f"The calibration text is used only for {', '.join(with_it)}: with imatrix "
                                  f"auto, {', '.join(without)} is quantized without an importance matrix; {fix}.")
    why = ("with imatrix never no importance matrix is made" if never else
           f"with imatrix auto an importance matrix is made only for types llama.cpp refuses without one, "
           f"which {', '.join(without)} is not")
    return Problem("warning", f"The calibration text is not used: {why}; {fix}.")


def validate_convert_hf(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    if (problem := _tool_problem()) is not None:
        return [problem]
    config = json.loads((main_file(variant) / "config.json").read_text())
    archs = config.get("architectures") or []
    supported = llamacpp_tools.supported_converter_architectures()
    if not archs or archs[0] not in supported:
        return [Problem("error", f"llama.cpp's converter does not support the architecture "
                                 f"{archs[0] if archs else '(none given)'}; it cannot become a GGUF.")]
    if "auto_map" in config and not variant.metadata.get("trust_remote_code"):
        return [Problem("error", "This model ships its own code (auto_map); re-import it with remote code "
                                 "allowed if you trust it.")]
    return []


def validate_imatrix(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    if (problem := _tool_problem()) is not None:
        return [problem]
    try:
        calibration_path(options["calibration"])
    except InvalidInputError as exc:
        return [Problem("error", str(exc))]
    return []


def validate_dequantize(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    return []


# ------------------------------------------------------------------------------ plans


def plan_quantize(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """F16 first when starting from safetensors, one shared importance matrix, then one job per type."""
    steps: list[Step] = []
    base: dict[str, Any] = {"input_variant_id": variant.id}
    if variant.format == "hf":
        steps.append(Step("llamacpp.convert_hf", {"outtype": "f16"}, input_variant_id=variant.id, intermediate=True))
        base = {"input_step": 0}
    needs_matrix = llamacpp_tools.types_requiring_imatrix()
    matrix_step: int | None = None
    if options["imatrix"] == "always" or (options["imatrix"] == "auto" and any(t in needs_matrix
                                                                               for t in options["types"])):
        steps.append(Step("llamacpp.imatrix", {"calibration": calibration_hash_option(options["calibration"])},
                          **base))
        matrix_step = len(steps) - 1
    for qtype in options["types"]:
        use_matrix = matrix_step is not None and (options["imatrix"] == "always" or qtype in needs_matrix)
        steps.append(Step("llamacpp.quantize", dict(options, types=[qtype], calibration="shipped"
                                                    if not use_matrix else calibration_hash_option(
                                                        options["calibration"])),
                          extra_inputs={"imatrix": matrix_step} if use_matrix else {}, **base))
    return steps


def calibration_hash_option(value: str) -> str:
    """The imatrix is keyed by its text's hash: an uploaded text is kept in the data root under
    its hash (copied when the plan is submitted), so the same text, whatever its path, makes the
    same variant."""
    if value == "shipped":
        return value
    return str(kept_path(calibration_path(value), suffix=".txt"))


# ------------------------------------------------------------------------------ the work


def _provenance(ctx: JobContext, parent: Variant) -> dict[str, str]:
    return {"modelcatalog.variant": ctx.job.target_variant_id or "", "modelcatalog.parent": parent.id,
            "modelcatalog.recipe": f"{ctx.job.recipe['conversion']} {json.dumps(ctx.job.recipe['options'])}"[:120],
            "modelcatalog.versions": f"llama-cpp-python {llamacpp_tools.llama_cpp_version()}"}


def _progress_from_tool(ctx: JobContext, start: float, end: float):
    seen = {"n": 0}

    def on_line(line: str) -> None:
        seen["n"] += 1
        if line.startswith("[") and "/" in line.split("]")[0]:  # "[  12/ 272] blk.0..." from quantize
            try:
                done, total = line[1:].split("]")[0].split("/")
                ctx.progress(start + (end - start) * int(done) / int(total), f"llama.cpp: {line[:70]}")
            except ValueError:
                pass
    return on_line


def convert_quantize(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                     extras: dict[str, Variant]) -> ConversionOutput:
    from backends.llamacpp.gguf_meta import effective_type_histogram

    qtype = options["types"][0]
    target = out / f"model-{qtype}.gguf"
    args: list[str] = []
    if options["allow_requantize"]:
        args.append("--allow-requantize")
    if "imatrix" in extras:
        matrix = extras["imatrix"]
        args += ["--imatrix", str(main_file(matrix))]
    for key, value in _provenance(ctx, parent).items():
        args += ["--override-kv", f"{key}=str:{value}"]
    args += [str(path), str(target), qtype, str(THREADS)]
    ctx.progress(0.05, f"quantizing to {qtype}")
    run_tool([llamacpp_tools.tool_path("llama-quantize"), *args], ctx.log_path, _progress_from_tool(ctx, 0.05, 0.7))
    histogram = effective_type_histogram(target)
    ctx.log("effective types: " + ", ".join(f"{k} {v['share']:.0%}" for k, v in histogram.items()))
    return ConversionOutput(qtype, {"effective_types": histogram,
                                    "imatrix": extras["imatrix"].id if "imatrix" in extras else None,
                                    **_gguf_facts(target)})


def _gguf_facts(path: Path) -> dict[str, Any]:
    from backends.llamacpp.gguf_meta import read_metadata

    meta = read_metadata(path).to_dict()
    return {k: meta[k] for k in ("architecture", "embedding_length", "context_length", "parameter_count",
                                 "quant_type", "has_chat_template")}


def _general_names(source: Source) -> dict[str, Any]:
    """general.name and the parts llama.cpp's naming convention uses, from the source. Left to
    itself the converter takes them from the folder it reads, the catalog's variant folder, and
    every GGUF would be called "V 810dceefb29a3c2b" in llama.cpp, LM Studio and Ollama. Every key
    is given, even as null, so that nothing of the folder's name survives."""
    from gguf.metadata import Metadata

    ref = source.origin_ref or ""
    repo_like = ref.count("/") == 1 and not ref.startswith("/") and " " not in ref
    _, org, basename, finetune, version, size_label = Metadata.get_model_id_components(
        ref if repo_like else source.name, source.param_count or 0)
    return {"general.name": source.name, "general.basename": basename or source.name,
            "general.finetune": finetune, "general.version": version, "general.size_label": size_label,
            "general.organization": org}


def convert_convert_hf(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                       extras: dict[str, Variant]) -> ConversionOutput:
    from backends.llamacpp.gguf_meta import effective_type_histogram

    outtype = options["outtype"]
    target = out / f"model-{outtype.upper()}.gguf"
    meta_file = ctx.work_dir / "provenance.json"
    names = _general_names(get_source(parent.source_id))
    meta_file.write_text(json.dumps({**names, "general.description": json.dumps(_provenance(ctx, parent))}))
    ctx.progress(0.05, f"converting to GGUF {outtype}")
    run_tool([sys.executable, llamacpp_tools.converter_path(), path, "--outfile", target, "--outtype", outtype,
              "--model-name", names["general.name"], "--metadata", meta_file], ctx.log_path, None,
             env={"PYTHONPATH": str(llamacpp_tools.source_dir() / "gguf-py"), "HF_HUB_OFFLINE": "1"})
    meta_file.unlink()
    precision = outtype.upper()
    return ConversionOutput(precision, {"effective_types": effective_type_histogram(target),
                                        **_gguf_facts(target)})


def convert_dequantize(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                       extras: dict[str, Variant]) -> ConversionOutput:
    from backends.llamacpp.gguf_dequant import DequantizeError, dequantize_to_hf

    ctx.progress(0.05, "dequantizing with transformers")
    folder = out / "model"
    try:
        dequantize_to_hf(path, folder, dtype=options["dtype"], log=ctx.log)
    except DequantizeError as exc:
        raise LlamaCppFailed(str(exc)) from exc
    # Flatten: the variant's folder is the Hugging Face folder itself.
    for item in folder.iterdir():
        item.rename(out / item.name)
    folder.rmdir()
    precision = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[options["dtype"]]
    return ConversionOutput(precision, {"dtype": options["dtype"]})


def convert_imatrix(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                    extras: dict[str, Variant]) -> ConversionOutput:
    text = calibration_path(options["calibration"])
    target = out / "imatrix.gguf"
    ctx.progress(0.05, "computing the importance matrix")
    run_tool([llamacpp_tools.tool_path("llama-imatrix"), "-m", path, "-f", text, "-o", target,
              "--chunks", str(options["chunks"]), "-c", str(options["ctx"]), "-t", str(THREADS), "--no-ppl"],
             ctx.log_path, None)
    if not target.exists():
        candidates = list(out.glob("imatrix*"))
        if not candidates:
            raise LlamaCppFailed("llama-imatrix wrote no matrix; see the log.")
        candidates[0].rename(target)
    return ConversionOutput("imatrix", {"calibration_sha256": calibration_hash(options["calibration"]),
                                        "calibration": text.name, "chunks": options["chunks"], "ctx": options["ctx"]})
