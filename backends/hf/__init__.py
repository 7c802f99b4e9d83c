"""Hugging Face folders (config.json + safetensors): the source form every toolkit converts from,
and the FP32 PyTorch reference every benchmark compares against."""
