"""What of Olive's auto-opt was run here (the allow-list) and what was seen when the rest was tried.

Olive 0.13.0 beside onnxruntime-genai 0.14.1 on this project's CPU machine, 2026-12-05. Every value
on the allow-list runs in CI (tests/test_olive.py); any other is refused in pre-flight with the
sentence below, never discovered through a failed job.
"""

from __future__ import annotations

from backends.registry import Gate

# auto-opt --use_model_builder --precision int4: the model builder's RTN int4 (blocks of 32).
PRECISIONS = {"int4": "INT4"}
GATES = {"int4": Gate("top1_agreement", 0.6, "try the ONNX Runtime model builder's fp32, or a GGUF Q8_0")}
UNVERIFIED_PRECISIONS = {
    "int8": "Olive's model builder pass fails with KeyError Precision.INT8",
    "fp16": "the CPU runtime of onnxruntime-genai 0.14.1 fails on fp16 decoders (Cast buffer shape mismatch)",
    "fp32": "it has not been run through Olive here; the ONNX Runtime toolkit's model builder makes fp32",
}
DEVICES = ("cpu",)
UNVERIFIED_DEVICES = {
    "gpu": "this machine has no GPU",
    "npu": "this machine has no NPU",
}
# Short name -> Olive's --provider.
PROVIDERS = {"cpu": "CPUExecutionProvider"}
UNVERIFIED_PROVIDERS = {
    "cuda": "it needs an NVIDIA GPU and onnxruntime-gpu, and this machine has neither",
    "dml": "DirectML runs on Windows only",
    "qnn": "the QNN provider runs on Snapdragon devices",
    "openvino": "it needs onnxruntime-openvino, which is not installed (the OpenVINO toolkit "
                                 "converts to OpenVINO IR instead)",
}
# Without the model builder, auto-opt captures the graph with torch export.
ROUTES = ("model_builder",)
UNVERIFIED_ROUTES = {
    "torch_export": "auto-opt's torch-export route (no --use_model_builder) fails on transformers 5.x",
}

# Olive quantize (then the model builder): algorithm -> Olive's pass.
QUANTIZE_PASSES = {"rtn": "Rtn"}
UNVERIFIED_ALGORITHMS = {
    "gptq": "it runs offline only through a workflow config with a local data set (the CLI's --data_files is "
            "ignored and it exits 0 having written nothing), and took over a minute per layer here (about half "
            "an hour for the demo); use the gptq-int4 example as a workflow config where time allows",
    "awq": "Olive's AWQ pass needs autoawq, which is not installed",
    "hqq": "Olive's HQQ pass quantizes ONNX models, not the Hugging Face form (the ONNX Runtime toolkit's "
           "INT4 weight-only conversion offers HQQ)",
    "spinquant": "it has not been tried here",
    "quarot": "it has not been tried here",
}
GROUP_SIZES = ("32",)
UNVERIFIED_GROUP_SIZES = {
    "64": "the model builder's int4 in blocks of 64 agreed with the parent on 54% of next tokens, under the gate",
    "128": "576, the demo's hidden size, does not divide by 128",
}
