"""llama.cpp's type names, their precision classes and the smoke gate each class must pass.

Quant type names are the ones `llama-quantize --help` prints; tests/test_llamacpp_convert.py
(test_declared_quant_types_exist_in_the_installed_llama_cpp) checks every declared name against the
installed binary, so a rename upstream fails CI.
"""

from __future__ import annotations

from typing import Any

from backends.registry import Gate

LEGACY_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
K_TYPES = ("Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K")
IQ_TYPES = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
            "IQ4_NL", "IQ4_XS")
QUANT_TYPES = K_TYPES + LEGACY_TYPES + IQ_TYPES
FLOAT_TYPES = ("F32", "F16", "BF16")
CONVERTER_OUTTYPES = ("f32", "f16", "bf16", "q8_0")

# Bits per weight class -> the least top-1 agreement with the parent a result must reach in its
# smoke test. Measured on SmolLM2-135M (see the GGUF issue's note); below it the job fails.
AGREEMENT_GATES = {cls: Gate("top1_agreement", least, "try a higher-bit type or an importance matrix")
                   for cls, least in {"float": 0.97, "8bit": 0.85, "6bit": 0.75, "5bit": 0.7, "4bit": 0.6,
                                      "3bit": 0.45, "2bit": 0.2}.items()}


def precision_class(qtype: str) -> str:
    q = qtype.upper()
    if q in FLOAT_TYPES:
        return "float"
    for bits, cls in (("8", "8bit"), ("6", "6bit"), ("5", "5bit"), ("4", "4bit"), ("3", "3bit"),
                      ("2", "2bit"), ("1", "2bit")):
        if q.startswith(("Q" + bits, "IQ" + bits)):
            return cls
    return "4bit"


def gate_for_precision(precision: str, parent: Any) -> Gate:
    """The agreement a result of this precision must reach; a float copy of a quantized GGUF is
    held to the 8-bit gate (it can only be as good as its parent)."""
    cls = precision_class(precision)
    if parent.format == "gguf" and parent.precision not in FLOAT_TYPES and cls == "float":
        return AGREEMENT_GATES["8bit"]
    return AGREEMENT_GATES[cls]


def quantize_gate(options: dict[str, Any], parent: Any) -> Gate:
    return gate_for_precision(options["types"][0], parent)


def convert_hf_gate(options: dict[str, Any], parent: Any) -> Gate:
    return gate_for_precision(options["outtype"].upper(), parent)


def dequantize_gate(options: dict[str, Any], parent: Any) -> Gate:
    return gate_for_precision({"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[options["dtype"]], parent)
