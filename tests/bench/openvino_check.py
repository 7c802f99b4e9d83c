"""The catalog's OpenVINO latency next to benchmark_app's, on the same IR, batch shape, threads and
performance hint, in one run.

For the digits CNN and MiniLM, each exported to ONNX and converted to IR FP32 and NNCF INT8, a
full-profile benchmark job runs (LATENCY hint, 2 threads), then `benchmark_app -m model.xml -d CPU
-hint none -nstreams 1 -nthreads 2 -api sync -shape ...` with the protocol's batch (benchmark_app
takes -nthreads only without a hint; one stream is what the LATENCY hint picks). The table shows
the two medians and their ratio (within 5% on a quiet machine is the goal).

    .venv/bin/python -m tests.bench.perf --only openvino
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench import perf

THREADS = 2
ITERATIONS = 300
MEDIAN = re.compile(r"Median:\s+([0-9.]+) (ms|us)")  # microseconds below 1 ms


def benchmark_app(xml: Path, shape: str) -> float:
    """benchmark_app's median latency in ms (sync API, one request, as the catalog measures)."""
    tool = Path(sys.executable).parent / "benchmark_app"
    # benchmark_app takes -nthreads only with -hint none; one stream is what the LATENCY hint picks.
    proc = subprocess.run([str(tool), "-m", str(xml), "-d", "CPU", "-hint", "none", "-nstreams", "1", "-api", "sync",
                           "-nthreads", str(THREADS), "-niter", str(ITERATIONS), "-shape", shape, "-infer_precision",
                           "f32"], capture_output=True, text=True, check=True, timeout=900)
    match = MEDIAN.search(proc.stdout)
    if match is None:
        raise RuntimeError(f"benchmark_app printed no median:\n{proc.stdout[-2000:]}")
    return float(match.group(1)) / (1000 if match.group(2) == "us" else 1)


def _shape(task: str, batch: int, seq_len: int, input_names: list[str]) -> str:
    if task == "image-classification":
        return f"pixel_values[{batch},1,8,8]"
    return ",".join(f"{name}[{batch},{seq_len}]" for name in input_names)


def run_openvino(base: Path) -> None:
    from backends.importers import ImportRequest, import_now
    from backends.registry import main_file
    from bench.jobs.common import submit_benchmarks
    from bench.protocol import protocol_for
    from catalog import config, results, variants
    from tests.helpers.chain import convert
    from worker.runner import run_to_completion

    perf.section("openvino: the catalog's latency vs benchmark_app (same IR, batch, threads, hint)")
    root = Path(tempfile.mkdtemp(prefix="openvino-", dir=base)) / "data"
    perf.use_data_root(root)
    config.save_settings(config.Settings(allowed_roots=[str(root.parent)]))
    rows = []
    for example in ("digits-cnn", "minilm"):
        source = import_now(ImportRequest(kind="demo", example=example))
        [onnx] = convert("onnxrt.export", source.root_variant_id)
        [ir] = convert("openvino.convert_onnx", onnx.id)
        [int8] = convert("openvino.quantize_static", ir.id)
        for sub in submit_benchmarks([ir.id, int8.id], "full"):
            job = run_to_completion(sub.job.id)
            assert job.state == "succeeded", job.error
        measured = {r.variant_id: r for r in results.latest_results(source.id, "full")}
        protocol = protocol_for("full", source.task)
        for variant in (ir, int8):
            stored = variants.get_variant(variant.id)
            names = [i["name"] for i in stored.metadata["inputs"]]
            catalog_ms = measured[variant.id].metrics["latency_ms_p50"]
            app_ms = benchmark_app(main_file(stored), _shape(source.task, protocol.batch_size, protocol.seq_len, names))
            rows.append([f"{example} {stored.precision}", f"{catalog_ms:.3f}", f"{app_ms:.3f}",
                         f"{catalog_ms / app_ms:.3f}", ",".join(measured[variant.id].flags) or "-"])
            print(f"  {rows[-1][0]}: catalog {catalog_ms:.3f} ms, benchmark_app {app_ms:.3f} ms", flush=True)
    perf.print_table(["variant", "catalog p50 ms", "benchmark_app median ms", "ratio", "flags"], rows)
