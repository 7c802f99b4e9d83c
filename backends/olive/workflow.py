"""Olive workflow configs: read, refuse what could run code or reach outside the job, check with
Olive's own config model, and run (`olive run`) inside the job folder.

Every Olive conversion of the catalog is a workflow config: the auto-opt form writes the config
Olive's `auto-opt --save_config_file` writes for the same choices, and a user's config is taken as
given. The catalog injects the input model, the output folder and the cache folder; a config's
other paths name files inside the job folder (the catalog writes the calibration text there as
calibration.jsonl).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from backends import tools
from catalog import config as catalog_config
from catalog.errors import InvalidInputError
from worker.context import JobContext

log = logging.getLogger(__name__)

TOOLKIT_NAME = "olive"
# The data root's config.json: {"toolkit_settings": {"olive": {"allow_code": true}}} lets a config
# carry user_script/script_dir, passes from other modules and systems other than the local one.
ALLOW_CODE = "allow_code"
CALIBRATION_FILE = "calibration.jsonl"   # written into the job folder before the run
CODE_KEYS = ("user_script", "script_dir")
# Data loaders of the `datasets` library that read local files; any other data_name is a Hub name.
LOCAL_LOADERS = ("json", "csv", "text", "parquet")
# What the catalog sets itself; a config's own values for these are replaced.
INJECTED = ("input_model", "output_dir", "cache_dir", "cache_config")
RUN_TIMEOUT_S = 3600
CHECK_TIMEOUT_S = 300
RECORD_FILES = ("footprint.json", "output_footprint.json", "run_history.txt")  # what `olive run` writes
# Olive and ONNX Runtime both keep telemetry under this folder of the user's cache (Linux).
TELEMETRY_DIR = "Microsoft"


class WorkflowRefused(InvalidInputError):
    pass


def code_allowed() -> bool:
    """Whether an admin let configs run code (off unless the data root's config.json says so)."""
    own = catalog_config.load_settings().toolkit_settings.get(TOOLKIT_NAME) or {}
    return bool(own.get(ALLOW_CODE))


@functools.cache
def builtin_passes() -> frozenset[str]:
    """Olive's own pass types, read from its metadata table (olive_config.json), not imported."""
    spec = importlib.util.find_spec("olive")
    if spec is None or spec.origin is None:
        return frozenset()
    table = json.loads((Path(spec.origin).parent / "olive_config.json").read_text())
    return frozenset(table.get("passes", {}))


# ------------------------------------------------------------------------------ reading a config


def parse(text: str) -> dict[str, Any]:
    """A pasted or uploaded JSON or YAML config as a dict; one sentence if it is neither."""
    try:
        data = yaml.safe_load(text)  # JSON is YAML; safe_load builds no Python objects
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise WorkflowRefused(f"The workflow config is neither JSON nor YAML (a syntax error{at}).") from None
    if not isinstance(data, dict) or not data:
        raise WorkflowRefused("The workflow config must be a JSON or YAML mapping with at least 'passes'.")
    return data


def _walk(node: Any, trail: tuple[str, ...] = (), key: str = ""):
    """(trail, key, value) for every value; a list's items carry the key of the list (data_files: [...])."""
    if isinstance(node, dict):
        for k, value in node.items():
            yield trail + (str(k),), str(k), value
            yield from _walk(value, trail + (str(k),), str(k))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield trail + (str(i),), key, value
            yield from _walk(value, trail + (str(i),), key)


def _escapes(value: str) -> bool:
    """Whether a path names something outside the job folder (it is read relative to it)."""
    if value.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", value) or "://" in value:
        return True
    return ".." in PurePosixPath(value.replace("\\", "/")).parts


def refusal(cfg: dict[str, Any], allow_code: bool) -> str | None:
    """Why this config is refused before anything runs (None when it is not)."""
    for trail, key, value in _walk(cfg):
        where = ".".join(trail)
        if key in CODE_KEYS and value not in (None, "") and not allow_code:
            return (f"The workflow config sets {where}, which runs Python code from a file; an admin must allow "
                    f"code in the data root's config.json (toolkit_settings.{TOOLKIT_NAME}.{ALLOW_CODE}).")
        if trail[0] in INJECTED:
            continue
        # Every string is read as a possible path: a file list may nest under any key (data_files: {train: ...}).
        if isinstance(value, str) and _escapes(value):
            return (f"The workflow config's {where} ({value!r}) points outside the job folder; name a file in "
                    f"the job folder instead (the catalog writes the calibration text there as {CALIBRATION_FILE}).")
        if key == "data_name" and isinstance(value, str) and value not in LOCAL_LOADERS:
            return (f"The workflow config's {where} ({value!r}) is a Hugging Face Hub data set, which cannot be "
                    f"fetched here; load a file of the job folder with one of {', '.join(LOCAL_LOADERS)} "
                    f"(data_files: {CALIBRATION_FILE}).")
    for name, system in (cfg.get("systems") or {}).items():
        kind = system.get("type") if isinstance(system, dict) else None
        if kind != "LocalSystem" and not allow_code:
            return (f"The workflow config's system {name!r} is {kind or 'untyped'}: only LocalSystem runs here "
                    "(remote, Docker and other Python environments are off unless an admin allows code).")
    passes = cfg.get("passes")
    if not isinstance(passes, dict) or not passes:
        return "The workflow config has no passes; it must name at least one Olive pass under 'passes'."
    known = builtin_passes()
    for name, spec in passes.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if not isinstance(kind, str):
            return f"The workflow config's pass {name!r} has no type."
        if kind not in known and known and not allow_code:
            return (f"The workflow config's pass {name!r} has type {kind!r}, which is not one of Olive's own passes "
                    "(a pass from another module runs its code; an admin must allow code).")
    return None


def canonical(text: str, allow_code: bool | None = None) -> str:
    """The config as the recipe stores it: checked, the injected keys dropped, keys sorted, so the
    same config (whatever its spacing, order or YAML/JSON spelling) gives the same variant."""
    cfg = parse(text)
    why = refusal(cfg, code_allowed() if allow_code is None else allow_code)
    if why:
        raise WorkflowRefused(why)
    kept = {k: v for k, v in cfg.items() if k not in INJECTED}
    return json.dumps(ordered(kept), separators=(",", ":"))


def ordered(node: Any, passes: bool = False) -> Any:
    """Keys sorted at every level except the passes themselves, whose order is the order they run in."""
    if isinstance(node, dict):
        keys = list(node) if passes else sorted(node, key=str)
        return {k: ordered(node[k], passes=(k == "passes" and not passes)) for k in keys}
    if isinstance(node, list):
        return [ordered(v) for v in node]
    return node


def injected(recipe: str, model: Path, job: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """The config that runs: the recipe with the input model, output and cache folders set."""
    cfg = json.loads(recipe)
    cfg["input_model"] = {"type": "HfModel", "model_path": str(model),
                          "load_kwargs": {"trust_remote_code": trust_remote_code}}
    cfg["output_dir"] = str(job / "olive-output")
    cfg["cache_dir"] = str(job / ".olive-cache")
    cfg.setdefault("systems", {"local_system": {"type": "LocalSystem", "accelerators": [
        {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}]}})
    first = next(iter(cfg["systems"]))
    cfg.setdefault("host", first)
    cfg.setdefault("target", first)
    cfg["no_artifacts"] = False   # keep footprints and the run history
    return cfg


def check_with_olive(recipe: str, model: Path) -> str | None:
    """Olive's own config model (RunConfig) over the config as it would run; one sentence, or None.
    A subprocess: importing Olive loads torch, which the app does not carry."""
    return _check_with_olive(recipe, str(model))


@functools.lru_cache(maxsize=32)
def _check_with_olive(recipe: str, model: str) -> str | None:
    cfg = injected(recipe, Path(model), Path("/nonexistent-job"))
    proc = subprocess.run([sys.executable, "-m", "backends.olive.check_config"], input=json.dumps(cfg),
                          capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, check=False,
                          cwd=Path(__file__).resolve().parents[2], env=tools_env(None))
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"the check exited with status {proc.returncode}"


# ------------------------------------------------------------------------------ running


def tools_env(cache_home: Path | None) -> dict[str, str]:
    """Offline, no telemetry; the user cache (where Olive and ONNX Runtime keep telemetry) moved
    into the job, so that a file written there is seen and nothing lands in the user's home."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "OLIVE_DISABLE_TELEMETRY": "1", "ORT_DISABLE_TELEMETRY": "1",
           "DO_NOT_TRACK": "1"}
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = str(cache_home)
    return env


def write_calibration(job: Path, text_file: Path) -> Path:
    """The calibration text as JSON lines ({"text": ...}, one per non-empty line) in the job folder."""
    out = job / CALIBRATION_FILE
    with out.open("w", encoding="utf-8") as fh:
        for line in text_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                fh.write(json.dumps({"text": line.strip()}) + "\n")
    return out


def _progress(ctx: JobContext, passes: list[str]):
    def on_line(line: str) -> None:
        match = re.search(r"Running pass (\S+?):", line)
        if match and match.group(1) in passes:
            done = passes.index(match.group(1))
            ctx.progress(0.05 + 0.55 * done / max(1, len(passes)), f"olive: pass {match.group(1)}")
    return on_line


def run(ctx: JobContext, cfg: dict[str, Any]) -> Path:
    """`olive run` over a full config in the job folder (its .olive-cache stays there); returns the
    folder holding the output model. Success is what was written, never the exit status alone."""
    job = ctx.work_dir
    cache_home = job / "user-cache"
    cache_home.mkdir(exist_ok=True)
    config_file = job / "workflow.json"
    config_file.write_text(json.dumps(cfg, indent=2))
    passes = list(cfg.get("passes", {}))
    try:
        tools.run_tool([sys.executable, "-m", "backends.olive.launch", "run", "--config", config_file],
                       ctx.log_path, _progress(ctx, passes), timeout=RUN_TIMEOUT_S, env=tools_env(cache_home),
                       cwd=job)
    except tools.ToolFailed as exc:
        raise InvalidInputError(f"Olive's workflow failed ({_cause(exc)}); see the job log.") from exc
    if (cache_home / TELEMETRY_DIR).exists():
        raise InvalidInputError("Olive or ONNX Runtime wrote a telemetry file during the run; nothing was "
                                "published (see backends/olive/launch.py).")
    return Path(cfg["output_dir"])


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)")


def _cause(exc: tools.ToolFailed) -> str:
    """The exception Olive died of (its last "SomeError: message" line), not the progress bar
    that happened to print last; else the last line."""
    lines = [line.strip() for line in exc.log_tail.splitlines() if line.strip()]
    if not lines:
        return "no output" if exc.returncode is not None else "timed out"
    causes = [m for m in map(_EXCEPTION_LINE.match, lines) if m]
    return (f"{causes[-1].group(1)}: {causes[-1].group(2)}" if causes else lines[-1])[:200]


def olive_record(output: Path, keep: Path) -> dict[str, Any]:
    """Olive's own account of the run (footprints, the pass-by-pass history), copied into the
    variant's olive/ folder; returns the summary shown on the variant's page."""
    keep.mkdir(parents=True, exist_ok=True)
    kept = []
    for name in RECORD_FILES:
        for found in sorted(output.rglob(name))[:1]:
            shutil.copy2(found, keep / name)
            kept.append(name)
    summary: dict[str, Any] = {"files": [f"olive/{k}" for k in kept]}
    history = keep / "run_history.txt"
    if history.is_file():
        summary["run_history"] = history.read_text(errors="replace").strip().splitlines()[:40]
    footprint = keep / "footprint.json"
    if footprint.is_file():
        data = json.loads(footprint.read_text())
        nodes = data.get("nodes", data)  # 0.13.0 writes the nodes at the top level
        # every pass's output, and the input model when the workflow evaluated it
        summary["passes"] = [{"model_id": mid, "from_pass": node.get("from_pass") or "(input model)",
                              "parent": node.get("parent_model_id"),
                              "metrics": (node.get("metrics") or {}).get("value")}
                             for mid, node in nodes.items() if node.get("from_pass") or node.get("metrics")]
    return summary


def page_record(summary: dict[str, Any]) -> dict[str, Any]:
    """Olive's record as the variant page's generic tool record (ui/variant_view.tool_record): a
    row per pass with its time (from the run history) and its metrics (when the workflow had an
    evaluator), the run history as text, and where the kept files are."""
    seconds = {}
    for line in summary.get("run_history", []):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] and cells[3]:
            seconds[cells[0]] = cells[3]
    rows = [{"pass": p["from_pass"], "model": p["model_id"], "from model": p["parent"] or "",
             "seconds": seconds.get(p["model_id"], ""),
             "metrics": _metric_words(p["metrics"]) if p["metrics"] else "none (the workflow has no evaluator)"}
            for p in summary.get("passes", [])]
    return {"title": "Olive's record of the run", "rows": rows, "text": "\n".join(summary.get("run_history", [])),
            "caption": "Kept with the variant: " + (", ".join(summary.get("files", [])) or "nothing")}


def _metric_words(metrics: dict[str, Any]) -> str:
    """Olive's metric values in a line, e.g. "latency-avg 1.079 (ms), size-bytes 15137026"."""
    words = []
    for name, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        words.append(f"{name} {shown}" + (" (ms)" if name.startswith("latency") else ""))
    return ", ".join(words)


def find_genai_folder(output: Path) -> Path | None:
    """The folder Olive wrote the ONNX Runtime GenAI model to (output_dir itself, or one below)."""
    hits = sorted(p.parent for p in output.rglob("genai_config.json") if (p.parent / "model.onnx").is_file())
    return hits[0] if hits else None
