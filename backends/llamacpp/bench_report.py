"""llama-bench's output (-o json, jsonl, csv or md), read by field name for an imported result.

One report holds one test per row: "pp N" (prompt processing, n_prompt > 0) and "tg N" (text
generation, n_gen > 0). The first of each kind gives the prefill and decode figures; every row is
kept in the stored report. JSON and JSONL carry each repetition's tokens/s (samples_ts): their
median is the p50; CSV and markdown only the mean, which stands in for it (said in the report).
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInputError

TOOL = "llama-bench"
# The fields a row must have to be read as llama-bench's (JSON, JSONL and CSV name them alike).
KEY_FIELDS = ("model_filename", "model_type", "n_prompt", "n_gen", "avg_ts")
MD_HEADER = ("model", "size", "params", "backend")
MD_TEST = re.compile(r"^(pp|tg)(\d+)$")
MD_TS = re.compile(r"^([\d.]+)\s*±\s*([\d.]+)$")
MD_BUILD = re.compile(r"^build:\s*(.+)$", re.M)
UNITS = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def _rows_structured(text: str) -> list[dict[str, Any]] | None:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        return rows if isinstance(rows, list) and all(isinstance(r, dict) for r in rows) else None
    if stripped.startswith("{"):
        rows = []
        for line in stripped.splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    return None
        return rows if all(isinstance(r, dict) for r in rows) else None
    if stripped.startswith("build_commit") or "model_filename" in stripped.split("\n", 1)[0]:
        return list(csv.DictReader(io.StringIO(stripped)))
    return None


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"This llama-bench report's {what} is not a number ({value!r}).") from None


def _with_unit(text: str, what: str) -> float:
    number, _, unit = text.strip().partition(" ")
    return _number(number, what) * UNITS.get(unit.strip(), 1.0)


def _rows_markdown(text: str) -> tuple[list[dict[str, Any]], str] | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 3:
        return None
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    if tuple(header[:4]) != MD_HEADER or "test" not in header or "t/s" not in header:
        return None
    rows = []
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False))
        test, ts = MD_TEST.match(cells.get("test", "")), MD_TS.match(cells.get("t/s", ""))
        if not test or not ts:
            raise InvalidInputError(f"This llama-bench table has a row it cannot read: {line[:80]}")
        n = int(test.group(2))
        rows.append({"model_type": cells["model"], "model_size": _with_unit(cells["size"], "size"),
                     "model_n_params": _with_unit(cells["params"], "parameter count"),
                     "backends": cells["backend"], "n_threads": cells.get("threads", ""),
                     "n_prompt": n if test.group(1) == "pp" else 0, "n_gen": n if test.group(1) == "tg" else 0,
                     "avg_ts": float(ts.group(1)), "stddev_ts": float(ts.group(2))})
    build = MD_BUILD.search(text)
    return rows, build.group(1).strip() if build else "not stated"


def read(text: str) -> dict[str, Any] | None:
    """The report, or None when the text is not llama-bench's."""
    structured = _rows_structured(text)
    if structured is not None:
        if not structured or not all(k in row for row in structured for k in KEY_FIELDS):
            if structured and any("model_filename" in row for row in structured):
                raise InvalidInputError("This llama-bench report lacks a field every row needs "
                                        f"({', '.join(KEY_FIELDS)}).")
            return None
        rows = structured
        first = rows[0]
        version = f"{first.get('build_commit', 'unknown')} ({first.get('build_number', '?')})"
        kind = "structured"
    else:
        md = _rows_markdown(text)
        if md is None:
            return None
        rows, version = md
        if not rows:
            raise InvalidInputError("This llama-bench table has no test rows.")
        first, kind = rows[0], "markdown"
    tests = [_test(r) for r in rows]
    prefill = next((t for t in tests if t["n_prompt"] > 0 and t["n_gen"] == 0), None)
    decode = next((t for t in tests if t["n_gen"] > 0 and t["n_prompt"] == 0), None)
    if prefill is None and decode is None:
        raise InvalidInputError("This llama-bench report has neither a prompt-processing (pp) nor a "
                                "text-generation (tg) test.")
    metrics: dict[str, Any] = {}
    if prefill:
        metrics |= {"prefill_tps_p50": prefill["tps_p50"], "prefill_tps_mean": prefill["tps_mean"]}
    if decode:
        metrics |= {"decode_tps_p50": decode["tps_p50"], "decode_tps_mean": decode["tps_mean"]}
    filename = str(first.get("model_filename") or "")
    return {
        "tool": TOOL, "version": version, "layout": kind,
        "machine": {"cpu": str(first.get("cpu_info") or "not stated"), "gpu": str(first.get("gpu_info") or ""),
                    "backends": str(first.get("backends") or ""), "threads": _int(first.get("n_threads"))},
        "model": {"filename": Path(filename).name if filename else "", "path": filename,
                  "type": str(first.get("model_type", "")), "size_bytes": _number(first["model_size"], "model size")
                  if "model_size" in first else None,
                  "n_params": _number(first["model_n_params"], "parameter count")
                  if "model_n_params" in first else None},
        "metrics": metrics, "tests": tests,
        "median_of": "samples" if all(t["samples"] for t in tests) else "mean (the report has no samples)",
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _test(row: dict[str, Any]) -> dict[str, Any]:
    n_prompt, n_gen = int(_number(row["n_prompt"], "n_prompt")), int(_number(row["n_gen"], "n_gen"))
    mean = _number(row["avg_ts"], "avg_ts")
    samples = row.get("samples_ts")
    if isinstance(samples, str):  # never in the CSV today; tolerated if a version adds it
        samples = [s for s in samples.split(";") if s]
    samples = [_number(s, "samples_ts") for s in samples] if isinstance(samples, list) else []
    return {"name": f"pp{n_prompt}" if n_prompt and not n_gen else f"tg{n_gen}" if n_gen and not n_prompt
            else f"pp{n_prompt}+tg{n_gen}", "n_prompt": n_prompt, "n_gen": n_gen, "tps_mean": mean,
            "tps_stddev": _number(row.get("stddev_ts", 0), "stddev_ts"), "samples": samples,
            "tps_p50": statistics.median(samples) if samples else mean, "test_time": row.get("test_time", "")}


def mismatch(report: dict[str, Any], variant: Any, source: Any) -> str | None:
    """Why the report is of another model than this GGUF variant (its type names the quantization;
    its parameter count is the source's), or None."""
    model = report["model"]
    quant = model["type"].split()[-1].upper() if model["type"].split() else ""
    precision = (variant.precision or "").upper()
    if quant and precision and quant != precision:
        return (f"This llama-bench report measured a {quant} model ({model['type']}); variant {variant.id} is "
                f"{precision}.")
    n_params, known = model.get("n_params"), getattr(source, "param_count", None)
    # the markdown table rounds the count to two decimals of a million
    if n_params and known and abs(n_params - known) > max(0.01 * known, 0.01e6):
        return (f"This llama-bench report measured a model of {n_params:,.0f} parameters; {variant.label}'s source "
                f"has {known:,}.")
    return None
