"""Microsoft Olive: auto-opt, quantize and workflow configs, run as catalog conversions."""
