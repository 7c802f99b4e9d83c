"""The model builder's precisions and execution providers: which were verified on this CPU (with
the smoke gate each must pass), and what was seen when the rest were tried."""

from __future__ import annotations

from typing import Any

from backends.registry import Gate

# Precision -> the precision label of the variant. int4 is the builder's default RTN, block 32,
# int8 activations ("accuracy level 4"); on SmolLM2-135M it measured 0.67 agreement and
# perplexity 26.6 against 20.0 for FP32.
PRECISION_LABELS = {"int4": "INT4", "fp32": "F32"}
GENAI_GATES = {"int4": Gate("top1_agreement", 0.6, "try fp32, or a GGUF Q8_0 or Q6_K"),
               "fp32": Gate("top1_agreement", 0.97)}
# What happened when the rest were tried on this CPU (onnxruntime-genai 0.14.1, 2026-11-25).
UNVERIFIED_PRECISIONS: dict[str, str] = {
    "fp16": "it builds, but the CPU decoder fails on the second token with a Cast buffer shape mismatch",
    "bf16": "it builds, but the CPU runtime has no bf16 Where kernel for its attention mask",
    "int8": "the model builder offers no int8 precision",
}


# Execution providers other than the CPU's: what each would need (none is on this machine).
UNVERIFIED_PROVIDERS: dict[str, str] = {
    "cuda": "it needs an NVIDIA GPU and onnxruntime-gpu, and this machine has neither",
    "dml": "DirectML runs on Windows only",
    "qnn": "the QNN provider runs on Snapdragon devices (or the HTP simulator through onnxruntime-qnn)",
    "webgpu": "it needs a GPU and a WebGPU build of ONNX Runtime",
}


def genai_gate(options: dict[str, Any], parent: Any) -> Gate:
    return GENAI_GATES[options["precision"]]
