"""The fixed prompts that the smoke test after each conversion (backends/smoke.py) and the
benchmarks' sample generations (bench/protocol.py) both use.

Changing them changes every causal-LM protocol's identity (its gen_prompts) and what a smoke
test compares, so add a protocol version rather than editing these in place.
"""

from __future__ import annotations

PROMPTS = (
    "The capital of France is",
    "Edge devices run small language models because",
    "def fibonacci(n):",
    "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n",
)
