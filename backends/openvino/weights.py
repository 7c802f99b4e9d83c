"""NNCF weight compression as the forms offer it: modes, their gates, and the checks that answer
before a job exists (group sizes that do not divide a layer, data-aware methods without data or
on 8-bit modes, combinations NNCF refuses). Pure: no toolkit is imported here."""

from __future__ import annotations

from typing import Any

from backends.registry import Gate

# Mode -> (optimum-intel dtype, bits, symmetric, precision label). The 4-bit float modes are the
# ones NNCF compresses on the CPU plugin (nf4: normal-float levels; mxfp4: e2m1 with a shared
# 8-bit exponent per 32 weights).
MODES: dict[str, tuple[str, int, bool, str]] = {
    "INT8_ASYM": ("int8", 8, False, "INT8"),
    "INT8_SYM": ("int8", 8, True, "INT8 sym"),
    "INT4_ASYM": ("int4", 4, False, "INT4"),
    "INT4_SYM": ("int4", 4, True, "INT4 sym"),
    "NF4": ("nf4", 4, False, "NF4"),
    "MXFP4": ("mxfp4", 4, True, "MXFP4"),
}
FOUR_BIT = tuple(m for m, (_, bits, _, _) in MODES.items() if bits == 4)
INT4_MODES = ("INT4_ASYM", "INT4_SYM")
MXFP4_GROUP = 32
GROUP_SIZES = ("-1", "32", "64", "128")   # -1: one scale per output channel
FALLBACKS = ("error", "adjust", "ignore")
BACKUP_PRECISIONS = ("int8_asym", "int8_sym", "none")
WEIGHT_FORMATS = ("fp32", "fp16", "int8", "int4")

# Least top-1 agreement with the parent in the smoke test (as for GGUF of the same bits).
GATES = {"float": Gate("top1_agreement", 0.97),
         8: Gate("top1_agreement", 0.85, "try INT8_ASYM or a higher ratio of 8-bit layers"),
         4: Gate("top1_agreement", 0.6, "try a smaller group size, AWQ with scale estimation, or a lower ratio")}


def weight_format_gate(options: dict[str, Any], parent: Any) -> Gate:
    return {"fp32": GATES["float"], "fp16": GATES["float"], "int8": GATES[8], "int4": GATES[4]}[
        options["weight_format"]]


def compress_gate(options: dict[str, Any], parent: Any) -> Gate:
    return GATES[MODES[options["mode"]][1]]


def default_group_size(options: dict[str, Any]) -> str:
    """The group size a mode takes when none is given: per channel (-1) for the 8-bit modes,
    MXFP4's own 32, else 64. The form follows the mode with it, so choosing INT8_ASYM no longer
    meets "set group size to -1" with the 4-bit modes' 64 still in the box."""
    mode = options["mode"]
    if MODES[mode][1] == 8:
        return "-1"
    return str(MXFP4_GROUP) if mode == "MXFP4" else "64"


def uses_data(options: dict[str, Any]) -> bool:
    return any(options.get(k) for k in ("awq", "scale_estimation", "gptq", "lora_correction"))


def group_size_problems(hidden_sizes: list[int], group_size: int, fallback: str) -> list[str]:
    """One sentence when a layer width does not divide into groups and NNCF would stop on it."""
    if group_size <= 0 or fallback != "error":
        return []
    bad = sorted({h for h in hidden_sizes if h % group_size})
    if not bad:
        return []
    fits = [g for g in (128, 64, 32) if all(h % g == 0 for h in hidden_sizes)]
    offer = f"choose group size {' or '.join(map(str, fits))}" if fits else "choose group size -1 (per channel)"
    return [f"A layer width of {bad[0]} does not divide into groups of {group_size}; {offer}, or set the group-size "
            "fallback to adjust (a smaller group for those layers) or ignore (leave them uncompressed)."]


def option_problems(options: dict[str, Any]) -> list[str]:
    """Combinations NNCF refuses, each as one sentence."""
    mode, problems = options["mode"], []
    bits = MODES[mode][1]
    if uses_data(options) and mode not in INT4_MODES:
        problems.append(f"AWQ, scale estimation, GPTQ and LoRA correction apply to the INT4 modes, not {mode}; "
                        "choose INT4_ASYM or INT4_SYM, or turn them off.")
    if options.get("gptq") and options.get("lora_correction"):
        problems.append("GPTQ and LoRA correction cannot be combined; choose one.")
    if options.get("gptq") and options.get("awq"):
        problems.append("GPTQ and AWQ cannot be combined; choose one.")
    if bits == 8 and (options["ratio"] < 1.0 or int(options["group_size"]) != -1):
        problems.append(f"{mode} compresses every layer per channel; set ratio to 1 and group size to -1, or choose "
                        "a 4-bit mode.")
    if mode == "MXFP4" and int(options["group_size"]) != MXFP4_GROUP:
        problems.append(f"MXFP4 shares one exponent per {MXFP4_GROUP} weights; set group size {MXFP4_GROUP}.")
    if bits == 8 and options["backup_precision"] != "int8_asym":
        problems.append("A backup precision applies to the layers a 4-bit mode leaves out; it has no meaning for "
                        f"{mode}.")
    return problems
