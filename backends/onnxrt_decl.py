"""ONNX Runtime conversions, declared as data (no toolkit import).

The model builder of onnxruntime-genai accepts more precisions than run on this CPU, so the
precision option offers only an allow-list that was built AND generated here (tests/test_onnxrt.py
builds the allow-list's default in CI); any other precision is refused in pre-flight as "not
verified here", with what was seen when it was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.registry import Backend, Conversion, Option, register
from catalog.errors import InvalidInputError

# Precision -> (precision label of the variant, least top-1 agreement with the parent in the
# smoke test). int4 is the builder's default RTN, block 32, int8 activations ("accuracy level 4");
# on SmolLM2-135M it measured 0.67 agreement and perplexity 26.6 against 20.0 for FP32.
VERIFIED_PRECISIONS: dict[str, tuple[str, float]] = {"int4": ("INT4", 0.6), "fp32": ("F32", 0.97)}

# What happened when the rest were tried on this CPU (onnxruntime-genai 0.14.1, 2026-11-25).
UNVERIFIED_PRECISIONS: dict[str, str] = {
    "fp16": "it builds, but the CPU decoder fails on the second token with a Cast buffer shape mismatch",
    "bf16": "it builds, but the CPU runtime has no bf16 Where kernel for its attention mask",
    "int8": "the model builder offers no int8 precision",
}


@dataclass(frozen=True)
class VerifiedChoice(Option):
    """A choice whose values outside the allow-list are refused as "not verified here"."""

    def normalize(self, value: Any) -> Any:
        if value in (None, ""):
            return super().normalize(value)
        value = str(value).strip().lower()
        if value not in self.choices:
            why = UNVERIFIED_PRECISIONS.get(value, "it has not been tried")
            raise InvalidInputError(f"The {self.name} {value} is not verified here on the CPU: {why}; choose "
                                    f"one of {', '.join(self.choices)}.")
        return super().normalize(value)


PACKAGES = ("onnxruntime_genai", "onnxruntime", "onnx", "onnx_ir", "torch", "transformers")

GENAI_BUILD = Conversion(
    backend="onnxrt", name="genai_build", title="Hugging Face → ONNX Runtime GenAI (model builder)",
    input_formats=("hf",), output_format="onnx-genai", module="backends.onnxrt", packages=PACKAGES,
    help="onnxruntime-genai's model builder: a folder with model.onnx, its external weights, "
         "genai_config.json and the tokenizer, for the CPU execution provider.",
    options=(VerifiedChoice("precision", "choice", "int4", tuple(VERIFIED_PRECISIONS),
                            "int4: MatMul weights in 4-bit blocks of 32 (RTN), about a third of the FP32 size; "
                            "fp32 keeps the source's predictions. Only precisions verified on this CPU are "
                            "offered."),),
    # Output is at most the FP32 input's size, plus the builder's temporary files.
    disk_factor=2.0, memory_factor=4.0)

ONNXRT = register(Backend(
    name="onnxrt", title="ONNX Runtime", runtime="ONNX Runtime GenAI CPU", packages=PACKAGES,
    conversions=(GENAI_BUILD,)))
