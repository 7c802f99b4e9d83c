"""The catalog's benchmark figures next to llama.cpp's own tools, on the same files, in one run.

For each GGUF variant of the demo (the imported Q4_1, Q8_0 and Q4_K_M quantized from it, and an
F16 converted from its dequantized Hugging Face form), a full-profile benchmark job runs, then
`llama-bench -p 256 -n 64 -t 2 -r 5` and `llama-perplexity -c 512 -t 2` on the eval text. The
table shows each pair and its ratio: decode and prefill tok/s should be within 5%, the
llama.cpp-compatible perplexity within 1%.

A virtual machine's speed drifts by 10-30% over minutes (llama-bench's own figures do), so the
job's figures and a llama-bench run minutes apart compare the machine as much as the tools. A
second table therefore pairs them: PAIRED_ROUNDS rounds of the catalog's speed process
(bench.measure, the full profile's 2 warm-ups and 10 repetitions) immediately followed by
llama-bench, and the median of the rounds' ratios.

    .venv/bin/python -m tests.bench.perf --only upstream
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import perf

THREADS = 2
BENCH_REPS = 5
PAIRED_ROUNDS = 5
FINAL_PPL = re.compile(r"Final estimate: PPL = ([0-9.]+)")


@dataclass
class UpstreamRow:
    label: str
    catalog: dict[str, Any]
    bench: dict[str, float]
    perplexity: float
    flags: list[str]


def llama_bench(model: Path) -> dict[str, float]:
    """llama-bench's average tok/s for pp256 and tg64 (its JSON output)."""
    from backends.llamacpp import tools as llamacpp_tools

    proc = subprocess.run([str(llamacpp_tools.tool_path("llama-bench")), "-m", str(model), "-p", "256", "-n", "64",
                           "-t", str(THREADS), "-r", str(BENCH_REPS), "-o", "json"],
                          capture_output=True, text=True, check=True, timeout=900)
    rows = json.loads(proc.stdout)
    return {"prefill": next(r["avg_ts"] for r in rows if r["n_prompt"] > 0),
            "decode": next(r["avg_ts"] for r in rows if r["n_gen"] > 0)}


def llama_perplexity(model: Path) -> float:
    from backends.llamacpp import tools as llamacpp_tools
    from bench.protocol import EVAL_TEXT

    proc = subprocess.run([str(llamacpp_tools.tool_path("llama-perplexity")), "-m", str(model), "-f", str(EVAL_TEXT),
                           "-c", "512", "-t", str(THREADS)], capture_output=True, text=True, check=True, timeout=1800)
    match = FINAL_PPL.search(proc.stdout + proc.stderr)
    if match is None:
        raise RuntimeError(f"llama-perplexity printed no final estimate:\n{proc.stderr[-2000:]}")
    return float(match.group(1))


def demo_gguf_variants(base: Path) -> list[tuple[str, str]]:
    """(label, variant id) of the demo's GGUF forms, made as jobs in a fresh data root."""
    root_id = perf.import_demo(Path(tempfile.mkdtemp(prefix="upstream-", dir=base)) / "data")
    hf = perf.run_job("llamacpp.dequantize", root_id, {}).variant_id
    f16 = perf.run_job("llamacpp.convert_hf", hf, {"outtype": "f16"}).variant_id
    q8 = perf.run_job("llamacpp.quantize", root_id, {"types": ["Q8_0"], "allow_requantize": True}).variant_id
    q4km = perf.run_job("llamacpp.quantize", root_id, {"types": ["Q4_K_M"], "allow_requantize": True}).variant_id
    return [("Q4_1 (demo)", root_id), ("Q8_0", q8), ("Q4_K_M", q4km), ("F16", f16)]


def catalog_full_benchmark(variant_id: str) -> tuple[dict[str, Any], list[str]]:
    from bench.jobs.common import submit_benchmarks
    from catalog import results, variants
    from worker.runner import run_to_completion

    job = run_to_completion(submit_benchmarks([variant_id], "full")[0].job.id)
    if job.state != "succeeded":
        raise RuntimeError(f"benchmark of {variant_id} ended {job.state}: {job.error}")
    source_id = variants.get_variant(variant_id).source_id
    result = next(r for r in results.latest_results(source_id, "full") if r.variant_id == variant_id)
    return result.metrics, result.flags


def catalog_speed(model: Path) -> dict[str, float]:
    """The full profile's speed runs alone (the process a benchmark job starts): median tok/s."""
    import statistics
    import sys

    import llama_cpp

    from backends.registry import runner_reference
    from bench.protocol import EVAL_TEXT, PROFILES
    from catalog import config

    protocol = PROFILES["full"]
    vocab = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    ids = vocab.tokenize(EVAL_TEXT.read_text().encode(), add_bos=True)[: protocol.prompt_tokens]
    work = Path(tempfile.mkdtemp(prefix="paired-"))
    spec = {"format": "gguf", "path": str(model), "threads": THREADS, "prompt_ids": ids,
            "prompt_tokens": protocol.prompt_tokens, "gen_tokens": protocol.gen_tokens,
            "warmup": protocol.warmup, "repetitions": protocol.repetitions} | runner_reference("gguf")
    (work / "spec.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "bench.measure", str(work / "spec.json"), str(work / "out.json")],
                   cwd=config.PROJECT_DIR, check=True, capture_output=True, timeout=900)
    runs = json.loads((work / "out.json").read_text())["runs"]
    return {"decode": statistics.median(r["decode_tps"] for r in runs),
            "prefill": statistics.median(r["prefill_tps"] for r in runs)}


def paired_ratios(model: Path) -> dict[str, list[float]]:
    """PAIRED_ROUNDS rounds of (catalog speed process, then llama-bench): each round's ratios."""
    out: dict[str, list[float]] = {"decode": [], "prefill": []}
    for _ in range(PAIRED_ROUNDS):
        ours, theirs = catalog_speed(model), llama_bench(model)
        for key in out:
            out[key].append(ours[key] / theirs[key])
    return out


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else ""


def run_upstream(base: Path) -> None:
    from backends.llamacpp import tools as llamacpp_tools

    perf.section("the catalog's figures next to llama-bench and llama-perplexity (same files, 2 threads)")
    if not llamacpp_tools.tools_ready():
        print("llama.cpp tools are not built; run ./scripts/test (or scripts/build_llama_tools.sh) first")
        return
    rows = []
    variants = demo_gguf_variants(base)
    for label, vid in variants:
        metrics, flags = catalog_full_benchmark(vid)
        path = perf.variant_file(vid)
        rows.append(UpstreamRow(label, metrics, llama_bench(path), llama_perplexity(path), flags))
        print(f"  {label}: measured", flush=True)
    perf.print_table(
        ["variant", "decode cat", "decode bench", "ratio", "prefill cat", "prefill bench", "ratio",
         "ppl compat", "llama-perplexity", "ratio", "ppl catalog (source ids)", "decode CV", "flags"],
        [[r.label, f"{r.catalog['decode_tps_p50']:.1f}", f"{r.bench['decode']:.1f}",
          ratio(r.catalog["decode_tps_p50"], r.bench["decode"]),
          f"{r.catalog['prefill_tps_p50']:.1f}", f"{r.bench['prefill']:.1f}",
          ratio(r.catalog["prefill_tps_p50"], r.bench["prefill"]),
          f"{r.catalog['llamacpp_perplexity']:.3f}", f"{r.perplexity:.3f}",
          ratio(r.catalog["llamacpp_perplexity"], r.perplexity),
          f"{r.catalog['perplexity']:.3f}", f"{100 * r.catalog.get('decode_tps_cv', 0):.1f}%",
          ",".join(r.flags)] for r in rows])
    import statistics

    print(f"\npaired: {PAIRED_ROUNDS} rounds per file of the catalog's speed process then llama-bench -r {BENCH_REPS}; "
          "the median of the rounds' ratios (and each round's)")
    paired = [(r.label, paired_ratios(perf.variant_file(vid))) for r, (_, vid) in zip(rows, variants, strict=True)]
    perf.print_table(
        ["variant", "decode ratio (median)", "rounds", "prefill ratio (median)", "rounds"],
        [[label, f"{statistics.median(p['decode']):.3f}", " ".join(f"{x:.2f}" for x in p["decode"]),
          f"{statistics.median(p['prefill']):.3f}", " ".join(f"{x:.2f}" for x in p["prefill"])]
         for label, p in paired])
