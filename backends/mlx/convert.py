"""MLX conversions as jobs: pre-flight (validate_*), plans and the job hooks (convert_*), all through
mlx-lm's own convert (its CLI's arguments). Declarations are in declaration.py; MLX and mlx-lm are
imported only in the child processes and runners, never by validate_* in the app.

Every quantized result is checked before it may become a variant: mlx-lm's reported bits per
weight is recorded, and a result in which mlx-lm left any matrix in float (it skips a layer whose
width the group size does not divide, and still says "Quantized model with 26.574 bits per
weight") is refused, never published as the N-bit model asked for. Then mlx-lm loads it and
generates, and the shared smoke test holds it against its parent."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.convert_job import ConversionOutput, Step
from backends.hf.folder import read_config
from backends.mlx import kernels, quant
from backends.mlx.import_check import headers, mlx_quantization
from backends.preflight import Problem
from backends.registry import main_file
from catalog import jobfiles
from catalog.errors import InvalidInputError
from catalog.records import Variant
from worker.context import JobContext

MODELS_PACKAGE = "mlx_lm.models"
# Model types mlx-lm maps onto another implementation (its utils.MODEL_REMAPPING), read from its source.
REMAPPING = re.compile(r'MODEL_REMAPPING\s*=\s*\{([^}]*)\}')
BPW = re.compile(r"Quantized model with ([0-9.]+) bits per weight")


class MLXFailed(InvalidInputError):
    pass


# ------------------------------------------------------------------------------ pre-flight


def supported_model_types() -> frozenset[str]:
    """Architectures the installed mlx-lm implements: its models/ modules and its remapped names,
    read from the package's files (importing mlx-lm would load transformers in the app)."""
    import importlib.util

    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    root = Path(next(iter(spec.submodule_search_locations)))
    found = {p.stem for p in (root / "models").glob("*.py") if not p.stem.startswith("_")}
    utils = root / "utils.py"
    match = REMAPPING.search(utils.read_text(errors="replace")) if utils.is_file() else None
    if match:
        found |= {k for k, v in re.findall(r'"([\w-]+)"\s*:\s*"([\w-]+)"', match.group(1)) if v in found}
    return frozenset(found)


def _architecture_problems(variant: Variant, config: dict[str, Any]) -> list[Problem]:
    model_type = config.get("model_type") or "(none given)"
    if model_type not in supported_model_types():
        return [Problem("error", f"mlx-lm {_mlx_lm_version()} has no implementation of the architecture "
                                 f"{model_type}; it cannot become an MLX model here.")]
    if "auto_map" in config and not variant.metadata.get("trust_remote_code"):
        return [Problem("error", "This model ships its own code (auto_map); re-import it with remote code allowed "
                                 "if you trust it.")]
    return []


def _mlx_lm_version() -> str:
    from backends.mlx.runner import runtime_versions

    return runtime_versions()["mlx-lm"]


def validate_convert(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    folder = main_file(variant)
    if not (folder / "config.json").is_file():
        return [Problem("error", "This Hugging Face form has no config.json; re-import it.")]
    config = read_config(folder)
    if mlx_quantization(config) is not None:
        return [Problem("error", "This folder is already MLX-quantized; dequantize it to a Hugging Face folder "
                                 "first.")]
    problems = _architecture_problems(variant, config)
    if problems:
        return problems
    found = quant.option_problems(options, quant.recipes())
    if options["mode"] != quant.FLOAT and not found:
        bits = quant.recipe_bits(options["mixed_recipe"]) if options["mixed_recipe"] != quant.NO_RECIPE \
            else (int(options["bits"]),)
        for b in bits:
            why = kernels.unsupported(options["mode"], b, int(options["group_size"]))
            if why:
                found.append(f"MLX on this machine ({kernels.device()}) cannot quantize {options['mode']} with {b} "
                             f"bits in groups of {options['group_size']}: {why.rstrip('.')}.")
                break
        if not found:
            found += quant.group_size_problems(config, int(options["group_size"]), quant.precision_label(options, ""))
    return [Problem("error", p) for p in found]


def plan_convert(variant: Variant, options: dict[str, Any]) -> list[Step]:
    """One step, with the options that do not apply cleared, so one recipe has one id: float weights
    record no bits or group, and a mixed recipe records its own low bits."""
    opts = dict(options)
    if opts["mode"] == quant.FLOAT:
        opts |= {"bits": quant.BITS[2], "group_size": "64", "mixed_recipe": quant.NO_RECIPE}
    elif opts["mixed_recipe"] != quant.NO_RECIPE:
        opts["bits"] = str(quant.recipe_bits(opts["mixed_recipe"])[0])
    return [Step("mlx.convert", opts, input_variant_id=variant.id)]


def validate_dequantize(variant: Variant, options: dict[str, Any]) -> list[Problem]:
    folder = main_file(variant)
    config = read_config(folder) if (folder / "config.json").is_file() else {}
    if mlx_quantization(config) is None:
        return [Problem("error", "This MLX folder is not quantized; it needs no dequantizing.")]
    return _architecture_problems(variant, config)


# ------------------------------------------------------------------------------ the work


def _run_convert(ctx: JobContext, args: list[str], step: str) -> str:
    """mlx-lm's convert, with its CLI's arguments, into a fresh folder; returns what it printed (the
    log keeps it too). It runs in the job's own process: a second Python importing mlx-lm and
    transformers cost 10-15 s a conversion, and the smoke test imports them here anyway."""
    from mlx_lm.convert import configure_parser, convert

    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        jobfiles.append_log(ctx.job.id, line)
        if line.startswith("[INFO]"):
            ctx.progress(0.1 if "Loading" in line else 0.3, f"mlx-lm: {line[6:].strip()}")

    writer = _LineWriter(progress)
    try:
        with contextlib.redirect_stdout(writer):
            convert(**vars(configure_parser().parse_args(args)))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - mlx-lm raises anything; the sentence names it
        jobfiles.append_log(ctx.job.id, traceback.format_exc())  # what its own process used to print
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise MLXFailed(f"mlx-lm could not {step} this model ({first}); see the job log.") from exc
    finally:
        writer.flush()  # a last line printed without its newline
    return "\n".join(lines)


class _LineWriter(io.TextIOBase):
    """A stdout that hands each printed line to a callback."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line, self._pending = on_line, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self._pending = (self._pending + text).split("\n")
        for line in done:
            if line.strip():
                self._on_line(line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._on_line(self._pending.rstrip())
        self._pending = ""


def _move_into(staging: Path, out: Path) -> None:
    for item in staging.iterdir():
        shutil.move(str(item), out / item.name)
    staging.rmdir()


def _generate_once(ctx: JobContext, folder: Path) -> str:
    ctx.progress(0.6, "mlx-lm: loading the result and generating")
    from backends.mlx.runner import generate_once

    try:
        text = generate_once(folder)["text"]
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        raise MLXFailed(f"mlx-lm cannot load or run the result ({type(exc).__name__}: {str(exc)[:160]}); it was "
                        "not published.") from exc
    ctx.log(f"mlx-lm generate: {text!r}")
    return text


def convert_convert(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                    extras: dict[str, Variant]) -> ConversionOutput:
    staging = out.parent / "mlx-staging"  # mlx-lm refuses an output folder that exists
    shutil.rmtree(staging, ignore_errors=True)
    args = ["--hf-path", str(path), "--mlx-path", str(staging)]
    quantized = options["mode"] != quant.FLOAT
    if quantized:
        args += ["-q", "--q-bits", options["bits"], "--q-group-size", options["group_size"],
                 "--q-mode", options["mode"]]
        if options["mixed_recipe"] != quant.NO_RECIPE:
            args += ["--quant-predicate", options["mixed_recipe"]]
    if options["dtype"] != "auto":
        args += ["--dtype", options["dtype"]]
    if parent.metadata.get("trust_remote_code"):
        args.append("--trust-remote-code")
    label = quant.precision_label(options, options["dtype"])
    ctx.progress(0.05, f"mlx-lm convert: {label}")
    output = _run_convert(ctx, args, "convert")
    _move_into(staging, out)

    found = headers(out)
    dtypes = sorted({info["dtype"] for h in found for n, info in h.items()
                     if n != "__metadata__" and n.endswith(".weight") and info["dtype"] not in ("U32", "U8")})
    facts: dict[str, Any] = {"mode": options["mode"], "device": kernels.device(), "weight_dtypes": dtypes}
    if quantized:
        match = BPW.search(output)
        if match is None:
            raise MLXFailed("mlx-lm did not report the bits per weight of its result; see the job log.")
        bpw = float(match.group(1))
        left = quant.float_layers(found)
        facts |= {"bits_per_weight": bpw, "group_size": int(options["group_size"]),
                  "mixed_recipe": None if options["mixed_recipe"] == quant.NO_RECIPE else options["mixed_recipe"]}
        ctx.log(f"mlx-lm reports {bpw:.3f} bits per weight; matrices left in float: {len(left)}")
        if left:
            raise MLXFailed(f"mlx-lm left {len(left)} matrices in float (e.g. {left[0]}) and reports {bpw:.3f} bits "
                            f"per weight: this is not the {label} model asked for, so it was not published; choose a "
                            "group size that divides every layer width.")
    else:
        label = quant.precision_label(options, _float_dtype(dtypes))
    facts["generated"] = _generate_once(ctx, out)
    return ConversionOutput(label, facts)


def _float_dtype(dtypes: list[str]) -> str:
    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    return names.get(dtypes[0], dtypes[0].lower()) if len(dtypes) == 1 else "+".join(dtypes)


def convert_dequantize(ctx: JobContext, parent: Variant, path: Path, out: Path, options: dict[str, Any],
                       extras: dict[str, Variant]) -> ConversionOutput:
    staging = out.parent / "mlx-staging"
    shutil.rmtree(staging, ignore_errors=True)
    ctx.progress(0.05, f"mlx-lm convert: dequantizing to {options['dtype']}")
    _run_convert(ctx, ["--hf-path", str(path), "--mlx-path", str(staging), "-d", "--dtype", options["dtype"]],
                 "dequantize")
    _move_into(staging, out)
    left = [n for h in headers(out) for n in h if n.endswith(".scales")]
    if left:
        raise MLXFailed(f"The dequantized folder still holds quantization scales ({left[0]}); it was not published.")
    config = json.loads((out / "config.json").read_text())
    config.pop("quantization", None)
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    precision = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[options["dtype"]]
    return ConversionOutput(precision, {"dequantized_from": parent.precision, "task": "text-generation"})
