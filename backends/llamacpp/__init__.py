"""llama.cpp: GGUF conversions (llama-quantize, llama-imatrix, convert_hf_to_gguf.py, dequantize),
the llama-cpp-python runner, the portable build of the binding and tools, and GGUF import checks.
Registered in backends.registry.DEFAULT_TOOLKITS through its `declaration` module."""
