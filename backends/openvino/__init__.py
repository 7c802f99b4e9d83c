"""OpenVINO: Hugging Face LLMs to IR through optimum-intel (with NNCF weight compression, data-free
or data-aware), ONNX encoders and classifiers to IR, NNCF post-training INT8, the OpenVINO GenAI and
OpenVINO runtime runners, and IR import checks. Registered in backends.registry.DEFAULT_TOOLKITS
through its `declaration` module."""
