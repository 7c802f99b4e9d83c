"""ONNX Runtime: the GenAI model builder for LLMs, torch.onnx export and onnxruntime.quantization
for encoders and classifiers, their runners, and ONNX import checks. Registered in
backends.registry.DEFAULT_TOOLKITS through its `declaration` module."""
