"""MLX quantization as the Convert form offers it: modes, bits, group sizes, mlx-lm's mixed
recipes, the smoke gates, and the checks that answer before a job exists. Pure: no toolkit is
imported here (the recipes are read from the installed mlx-lm's source, as text).

What really runs on this machine's MLX backend is not assumed: kernels.py quantizes and multiplies
one small matrix in every (mode, bits, group size) and pre-flight refuses the ones that failed,
with MLX's own reason."""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from backends.registry import Gate

FLOAT = "float"  # no quantization: every weight in the chosen dtype
# The modes mlx-lm 0.31's convert offers (--q-mode), affine first (its default).
MODES = ("affine", "mxfp4", "nvfp4", "mxfp8")
BITS = ("2", "3", "4", "6", "8")
GROUP_SIZES = ("16", "32", "64", "128")
DTYPES = ("auto", "float32", "float16", "bfloat16")  # auto: the config's torch_dtype, else the weights' own
NO_RECIPE = "none"

# Least top-1 agreement with the parent in the smoke test, by the (lowest) bits of a result, as
# for GGUF types of the same bits (backends/llamacpp/quant_types.py, measured on SmolLM2-135M),
# but 4 bits at 0.55, not 0.6: mlx-lm's affine 4-bit is plain round-to-nearest (no k-quant search)
# and its group-64 result of the demo agrees on 0.605 (measured 2026-12-05), too close to 0.6.
GATE_HINT = "try more bits, a smaller group size or a mixed recipe"
GATES = {"float": Gate("top1_agreement", 0.97), 8: Gate("top1_agreement", 0.85, GATE_HINT),
         6: Gate("top1_agreement", 0.75, GATE_HINT), 4: Gate("top1_agreement", 0.55, GATE_HINT),
         3: Gate("top1_agreement", 0.45, GATE_HINT), 2: Gate("top1_agreement", 0.2, GATE_HINT)}


@lru_cache(maxsize=1)
def recipes() -> tuple[str, ...]:
    """The mixed-precision recipes of the installed mlx-lm (its QUANT_RECIPES), read from its source."""
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        return ()
    source = Path(next(iter(spec.submodule_search_locations))) / "convert.py"
    match = re.search(r"QUANT_RECIPES\s*=\s*\[([^\]]*)\]", source.read_text(errors="replace")) if source.is_file() \
        else None
    return tuple(re.findall(r'"(\w+)"', match.group(1))) if match else ()


def recipe_bits(recipe: str) -> tuple[int, int]:
    """(low, high) bits of a recipe named mixed_<low>_<high>."""
    _, low, high = recipe.split("_")
    return int(low), int(high)


def low_bits(options: dict[str, Any]) -> int | None:
    """The fewest bits any quantized layer gets (None: unquantized)."""
    if options["mode"] == FLOAT:
        return None
    if options.get("mixed_recipe", NO_RECIPE) != NO_RECIPE:
        return recipe_bits(options["mixed_recipe"])[0]
    return int(options["bits"])


def gate(options: dict[str, Any], parent: Any) -> Gate:
    bits = low_bits(options)
    return GATES["float"] if bits is None else GATES[max(b for b in GATES if isinstance(b, int) and b <= bits)]


def precision_label(options: dict[str, Any], dtype_used: str) -> str:
    """E.g. "4-bit g64", "mixed_3_6 g64", "MXFP4", "F16" (the variant's label adds "mlx")."""
    mode = options["mode"]
    if mode == FLOAT:
        return {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}.get(dtype_used, dtype_used)
    if mode != "affine":
        return mode.upper()
    if options.get("mixed_recipe", NO_RECIPE) != NO_RECIPE:
        return f"{options['mixed_recipe']} g{options['group_size']}"
    return f"{options['bits']}-bit g{options['group_size']}"


def linear_widths(config: dict[str, Any]) -> dict[str, int]:
    """The input widths of a transformer's linear layers and embedding, which mlx-lm groups weights
    along (a layer whose width the group size does not divide is silently left in float)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    hidden, heads = text.get("hidden_size"), text.get("num_attention_heads")
    widths: dict[str, int] = {}
    if isinstance(hidden, int) and hidden > 0:
        widths["hidden size (q/k/v, gate/up projections, embedding)"] = hidden
        head_dim = text.get("head_dim") or (hidden // heads if isinstance(heads, int) and heads else None)
        if isinstance(heads, int) and isinstance(head_dim, int) and heads * head_dim != hidden:
            widths["attention output width (o_proj)"] = heads * head_dim
    inter = text.get("intermediate_size")
    if isinstance(inter, int) and inter > 0:
        widths["intermediate size (down projection)"] = inter
    return widths


def group_size_problems(config: dict[str, Any], group_size: int, asked: str) -> list[str]:
    """One sentence when a layer width does not divide into groups: mlx-lm would leave those layers
    in float and still call the result quantized (group 128 on SmolLM2-135M: 26.574 bits per weight)."""
    widths = linear_widths(config)
    bad = [(what, w) for what, w in widths.items() if w % group_size]
    if not bad:
        return []
    fits = [g for g in (128, 64, 32) if all(w % g == 0 for w in widths.values())]
    offer = f"choose group size {' or '.join(map(str, fits))}" if fits else "this model cannot be grouped evenly"
    what, width = bad[0]
    return [f"The {what} {width} does not divide into groups of {group_size}: mlx-lm would leave those layers in "
            f"float and the result would not be the {asked} model asked for; {offer}."]


def option_problems(options: dict[str, Any], available_recipes: tuple[str, ...]) -> list[str]:
    """Combinations mlx-lm refuses or ignores, each as one sentence (kernel support is kernels.py's)."""
    problems = []
    recipe = options.get("mixed_recipe", NO_RECIPE)
    if recipe != NO_RECIPE:
        if recipe not in available_recipes:
            problems.append(f"The installed mlx-lm has no mixed recipe {recipe}; choose one of "
                            f"{', '.join(available_recipes) or 'none'}.")
        elif options["mode"] != "affine":
            problems.append(f"mlx-lm's mixed recipes quantize in affine mode only, not {options['mode']}; choose "
                            "mode affine or no recipe.")
    if options["mode"] == FLOAT and recipe != NO_RECIPE:
        problems.append("A mixed recipe quantizes; choose mode affine for it, or no recipe for float weights.")
    return problems


def float_layers(headers: list[dict[str, Any]]) -> list[str]:
    """Matrices of an MLX folder left in float (a 2-D `.weight` without its `.scales`), from the
    safetensors headers: in a quantized result these are layers mlx-lm skipped."""
    names = {n for h in headers for n in h if n != "__metadata__"}
    return sorted(n for h in headers for n, info in h.items()
                  if n.endswith(".weight") and n != "__metadata__" and len(info.get("shape", ())) == 2
                  and n[: -len(".weight")] + ".scales" not in names)
