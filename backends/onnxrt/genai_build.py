"""ONNX Runtime conversions: pre-flight checks and the work itself.

Declarations are in declaration.py. validate_* run in the app and only read cheap facts (the
model's config.json and the builder's own source text); convert_* run in job processes, where
the model builder runs as a subprocess so its torch/transformers memory is returned at once.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from backends import tools
from backends.convert_job import ConversionOutput
from backends.onnxrt.precisions import PRECISION_LABELS
from backends.onnxrt.schemas import register_ort_schemas
from backends.preflight import Problem
from backends.registry import main_file
from catalog.errors import InvalidInputError
from catalog.records import Variant
from worker.context import JobContext

log = logging.getLogger(__name__)

BUILDER_MODULE = "onnxruntime_genai.models.builder"
BUILD_TIMEOUT_S = 3600
THREADS = max(1, min(4, os.cpu_count() or 1))


class OnnxBuildFailed(InvalidInputError):
    pass


# ------------------------------------------------------------------------------ pre-flight


@lru_cache(maxsize=1)
def builder_architectures() -> frozenset[str]:
    """The architectures the installed model builder dispatches on, read from its source (importing
    it would load torch in the app)."""
    spec = importlib.util.find_spec("onnxruntime_genai")
    if spec is None or spec.origin is None:
        return frozenset()
    source = Path(spec.origin).parent / "models" / "builder.py"
    if not source.is_file():
        return frozenset()
    return frozenset(re.findall(r'architectures\[0\] == "(\w+)"', source.read_text(errors="replace")))


def validate_genai_build(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    config_file = main_file(variant) / "config.json"
    if not config_file.is_file():
        return [Problem("error", "This Hugging Face form has no config.json; re-import or re-convert it.")]
    if not any(main_file(variant).glob("*.safetensors")):
        # Without safetensors the builder (through transformers) would fall back to pickle weights.
        return [Problem("error", "This Hugging Face form has no safetensors weights, and pickle weights are never "
                                 "loaded; convert or import a safetensors form first.")]
    config = json.loads(config_file.read_text())
    archs = config.get("architectures") or []
    supported = builder_architectures()
    if supported and (not archs or archs[0] not in supported):
        return [Problem("error", f"The ONNX Runtime GenAI model builder does not support the architecture "
                                 f"{archs[0] if archs else '(none given)'}; it cannot become an ONNX GenAI model.")]
    if "auto_map" in config and not variant.metadata.get("trust_remote_code"):
        return [Problem("error", "This model ships its own code (auto_map); re-import it with remote code "
                                 "allowed if you trust it.")]
    if variant.precision not in ("F32", "F16", "BF16"):
        return [Problem("warning", f"The input is {variant.precision}; the builder reads it as floats, so "
                                   "expect the input's own quantization error as well.")]
    return []


# ------------------------------------------------------------------------------ the work


def _progress_from_builder(ctx: JobContext, layers: int, start: float, end: float):
    def on_line(line: str) -> None:
        # The builder prints "Reading layer N" once per block; weights are saved after that.
        match = re.search(r"Reading layer (\d+)", line)
        if match and layers:
            done = min(int(match.group(1)) + 1, layers)
            ctx.progress(start + (end - start) * done / layers, f"model builder: layer {done}/{layers}")
    return on_line


def check_output(folder: Path) -> dict[str, Any]:
    """The ONNX checker over the written model (by path, so external data is checked too), and
    the facts shown on the variant page."""
    import onnx

    register_ort_schemas()
    model_file = folder / "model.onnx"
    if not model_file.is_file() or not (folder / "genai_config.json").is_file():
        raise OnnxBuildFailed("The model builder wrote no model.onnx or genai_config.json; see the job log.")
    try:
        onnx.checker.check_model(str(model_file))
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise OnnxBuildFailed(f"The built model fails the ONNX checker ({first}); it was not published.") from exc
    model = onnx.load(str(model_file), load_external_data=False)
    genai = json.loads((folder / "genai_config.json").read_text())["model"]
    return {"opset": {op.domain or "ai.onnx": op.version for op in model.opset_import},
            "inputs": [i.name for i in model.graph.input], "outputs": [o.name for o in model.graph.output],
            "ops": sorted({n.op_type for n in model.graph.node}),
            "architecture": genai.get("type"), "context_length": genai.get("context_length"),
            "num_hidden_layers": genai.get("decoder", {}).get("num_hidden_layers")}


def run_once(folder: Path) -> str:
    """Load the result and decode a few tokens: a model that cannot run fails here, in one
    sentence, before the (slower) smoke test starts."""
    from backends.onnxrt.genai_runner import load

    try:
        runner = load(folder, threads=THREADS)
        try:
            return runner.generate("The capital of France is", 4)
        finally:
            runner.close()
    except RuntimeError as exc:
        raise OnnxBuildFailed(f"The built model does not run in ONNX Runtime GenAI "
                              f"({str(exc).strip()[:160]}); it was not published.") from exc


def convert_genai_build(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                        extras: dict[str, Variant]) -> ConversionOutput:
    precision = options["precision"]
    label = PRECISION_LABELS[precision]
    cache = ctx.work_dir / "builder-cache"
    config = json.loads((path / "config.json").read_text())
    # The builder trusts remote code unless told not to; the catalog allows it only per import.
    remote = "true" if parent.metadata.get("trust_remote_code") else "false"
    ctx.progress(0.05, f"model builder: {precision} for the CPU")
    try:
        tools.run_tool([sys.executable, "-m", BUILDER_MODULE, "-i", path, "-o", out, "-p", precision,
                        "-e", options.get("execution_provider", "cpu"),
                        "-c", cache, "--extra_options", "hf_token=false", f"hf_remote={remote}"],
                       ctx.log_path, _progress_from_builder(ctx, int(config.get("num_hidden_layers") or 0), 0.05, 0.6),
                       timeout=BUILD_TIMEOUT_S,
                       env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    except tools.ToolFailed as exc:
        # The builder's last line is usually the exception it died of (a traceback's final line).
        lines = [line.strip() for line in exc.log_tail.splitlines() if line.strip()]
        last = lines[-1][:160] if lines else "no output" if exc.returncode is not None else "timed out"
        raise OnnxBuildFailed(f"The ONNX Runtime GenAI model builder failed ({last}); see the job log.") from exc
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    ctx.progress(0.62, "ONNX checker")
    facts = check_output(out)
    ctx.progress(0.66, "running the result once")
    sample = run_once(out)
    ctx.log(f"ONNX checker passed (opset {facts['opset']}); first run: {sample!r}")
    return ConversionOutput(label, {"builder_precision": precision, "execution_provider": "cpu",
                                    **facts})
