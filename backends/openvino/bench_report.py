"""OpenVINO benchmark_app's JSON statistics report (-json_stats -report_folder DIR:
DIR/benchmark_report.json), read by field name for an imported result.

benchmark_app writes every value as a string ("0.42", "None"); its latencies are of one infer
request (a batch of "batch size" inputs) and "throughput" is inputs per second. The report names
neither the OpenVINO version nor the CPU: the device ("target device") is what it states.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from catalog.errors import InvalidInputError

TOOL = "benchmark_app"
SECTIONS = ("cmd_options", "configuration_setup", "execution_results")
# stored metric -> (the report's field, scale)
FIELDS = {"throughput_per_s": ("throughput", 1.0), "latency_ms_p50": ("latency (ms)", 1.0),
          "latency_ms_mean": ("avg latency", 1.0), "latency_ms_min": ("min latency", 1.0),
          "latency_ms_max": ("max latency", 1.0), "first_inference_ms": ("first inference time (ms)", 1.0),
          "load_s": ("compile model time (ms)", 0.001)}


def _float(value: Any, field: str) -> float | None:
    if value in (None, "", "None", "N/A"):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"This benchmark_app report's {field!r} is not a number ({value!r}).") from None


def read(text: str) -> dict[str, Any] | None:
    """The report, or None when the text is not a benchmark_app statistics report."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "execution_results" not in data or "configuration_setup" not in data:
        return None
    if not all(isinstance(data.get(s), dict) for s in SECTIONS):
        raise InvalidInputError("This benchmark_app report lacks one of its sections "
                                f"({', '.join(SECTIONS)}), or one is not an object.")
    results, setup, options = data["execution_results"], data["configuration_setup"], data["cmd_options"]
    if "throughput" not in results:
        raise InvalidInputError("This benchmark_app report has no throughput in its execution results.")
    metrics = {name: value * scale for name, (field, scale) in FIELDS.items()
               if (value := _float(results.get(field), field)) is not None}
    model_path = str(options.get("-m") or "")
    return {
        "tool": TOOL, "version": "not stated in the report",
        "machine": {"cpu": "not stated", "device": str(setup.get("target device", "")),
                    "api": str(setup.get("API", "")), "hint": str(options.get("-hint", "")),
                    "threads": _int(options.get("-nthreads")),
                    "parallel_requests": str(setup.get("number of parallel infer requests", ""))},
        "model": {"filename": PurePath(model_path).name, "path": model_path,
                  "topology": str(setup.get("topology", "")), "precision": str(setup.get("precision", "")),
                  "batch_size": _int(setup.get("batch size"))},
        "metrics": metrics, "tests": [{"name": "inference", **{k: str(v) for k, v in results.items()}}],
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def mismatch(report: dict[str, Any], variant: Any, source: Any) -> str | None:
    """Why the report measured another model than this IR: the .xml it ran is none of the
    variant's files (by name; the report holds no hash)."""
    name = report["model"]["filename"]
    files = [PurePath(f.relpath).name for f in variant.files]
    if name and name not in files:
        return (f"This benchmark_app report ran {name}, which is not a file of variant {variant.id} "
                f"({', '.join(f for f in files if f.endswith('.xml')) or 'no .xml'}).")
    return None
