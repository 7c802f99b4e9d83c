"""Load: browser sessions and CLI writers on one data root at once; figures printed, checks returned.

Run from the repository root (the data root is made under a temporary folder unless given):

    .venv/bin/python -m tests.bench.load --sessions 8 --writers 2 --seconds 300
    .venv/bin/python -m tests.bench.load --sessions 3 --writers 1 --seconds 30   # CI's short version

The real app is started (tests/browser.py's running_app, whose supervisor runs the queued jobs) and
driven by ONE headless Chromium with one Playwright context per session (async API), next to CLI
writers that are subprocesses of `cli.py --data-root R ...`:

- a browser session loops: open the Catalog, a Model page, Benchmarks, Jobs or Storage and read it;
  click "Import the demo model" (the Catalog's, while it is empty, or the Import page's), or
  "Train and import the digits CNN"; submit a cheap conversion through the Convert page
  (llama.cpp Q4_K_M of the demo with allow requantize, or ONNX Runtime conversions of the digits CNN).
- a CLI writer loops: import (--demo, --example digits-cnn, with --tags: a later import of the same
  bytes adds its tags, which is how the CLI tags a source), convert (the digits CNN to ONNX, then
  INT4 recipes it owns: writers never share a recipe, so each owns its variants' fate), benchmark
  (quick, the digits ONNX only), export to a folder outside the data root, delete a variant it made.

Every text a page shows and everything a command prints is searched for lock errors and tracebacks
("lock", "Conflicting lock", "Traceback", "Exception", "ConstraintException"). When the time is up,
the ops in flight finish, queued jobs are waited for, and the catalog is held against the ops that
reported success: imports and tags present, conversions available (or deleted when their owner's
last successful op was a delete), exports complete, benchmark results stored; no variant or job
row that no op explains; every available variant's files on disk with their recorded size and
sha256; no artifact folder without a row (catalog.storage.find_orphans).

The file has no test_ functions; tests/test_load.py runs the short version in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.perf import use_data_root
from tests.browser import CHROMIUM, CHROMIUM_ARGS, REPO, leaves_machine, running_app

# What a user must never read. "lock" as a word: "block size" (the quantize form's help) is not one.
LOCK_PATTERNS = {
    "lock": re.compile(r"\block(s|ed)?\b", re.IGNORECASE),
    "Conflicting lock": re.compile(r"Conflicting lock"),
    "Traceback": re.compile(r"Traceback"),
    "Exception": re.compile(r"Exception"),
    "ConstraintException": re.compile(r"ConstraintException"),
}
ID = {"s": re.compile(r"\bs-[0-9a-f]{16}\b"), "v": re.compile(r"\bv-[0-9a-f]{16}\b"),
      "j": re.compile(r"\bj-[0-9a-f]{12}\b")}
PAGE_TIMEOUT_MS = 90_000
CLI_TIMEOUT_S = 900
JOBS_TIMEOUT_S = 1200
# INT4 recipes of the digits CNN's ONNX form, dealt out to the writers so none shares one.
INT4_RECIPES = [("RTN", b, s) for b in (16, 32, 64, 128) for s in (True, False)] + [
    ("HQQ", b, False) for b in (16, 32, 64, 128)]
# What a writer does in turn once the digits CNN and its ONNX form exist (starting at its own offset).
WRITER_CYCLE = ("convert", "export", "tag", "delete", "convert", "bench", "export", "delete")
BROWSER_ONNX = ["onnxrt.quantize_dynamic", "onnxrt.convert_fp16", "onnxrt.quantize_static"]


@dataclass
class Op:
    actor: str  # "browser-0", "cli-1"
    kind: str  # page, import, tag, convert, bench, export, delete
    what: str
    ok: bool = False
    reason: str = ""
    seconds: float = 0.0
    started: float = 0.0
    ended: float = 0.0
    jobs: list[str] = field(default_factory=list)
    variant: str | None = None  # the variant made, deleted, exported or benchmarked
    source: str | None = None
    tags: list[str] = field(default_factory=list)
    export_path: str | None = None
    output: str = ""


@dataclass
class LoadReport:
    sessions: int
    writers: int
    seconds: float
    wall_s: float = 0.0
    ops: list[Op] = field(default_factory=list)
    lock_errors: list[str] = field(default_factory=list)  # actor, where, pattern, excerpt
    lost_writes: list[str] = field(default_factory=list)
    unreported_writes: list[str] = field(default_factory=list)  # an op said it failed, yet it happened
    unexplained_rows: list[str] = field(default_factory=list)  # rows no op accounts for
    variants_without_files: list[str] = field(default_factory=list)
    files_without_rows: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # other orphans: work folders of finished jobs...
    job_states: dict[str, int] = field(default_factory=dict)
    failed_jobs: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    catalog: dict[str, int] = field(default_factory=dict)
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    # A run whose operations mostly failed proved nothing, however tidy the catalog it left.
    MAX_FAILED_SHARE = 0.5

    @property
    def failed_share(self) -> float:
        return sum(not o.ok for o in self.ops) / len(self.ops) if self.ops else 1.0

    @property
    def writes_done(self) -> int:
        return sum(o.ok and o.kind in ("import", "tag", "convert", "bench", "delete") for o in self.ops)

    @property
    def verdict_problems(self) -> list[str]:
        """Why the run is not clean (empty: clean): damage found, or too little done to tell."""
        problems = [f"{title}: {len(items)}" for title, items in (
            ("lock errors", self.lock_errors), ("lost writes", self.lost_writes),
            ("writes that reported failure", self.unreported_writes), ("unexplained rows", self.unexplained_rows),
            ("variants without files", self.variants_without_files),
            ("files without rows", self.files_without_rows), ("external requests", self.external_requests)) if items]
        if not self.ops:
            problems.append("no operation ran")
        elif self.failed_share > self.MAX_FAILED_SHARE:
            problems.append(f"{self.failed_share:.0%} of {len(self.ops)} operations failed")
        if self.ops and self.writes_done == 0:
            problems.append("no write succeeded")
        return problems

    @property
    def clean(self) -> bool:
        return not self.verdict_problems

    def print(self) -> None:
        print(f"\n=== load: {self.sessions} browser session(s), {self.writers} CLI writer(s), "
              f"{self.seconds:.0f} s of ops, {self.wall_s:.0f} s in all "
              f"(load average at the end {', '.join(f'{x:.1f}' for x in self.load_avg)})")
        kinds = sorted({(o.actor.split("-")[0], o.kind) for o in self.ops})
        print(f"{'actor':<8} {'op':<8} {'ops':>5} {'ok':>5} {'failed':>6} {'median s':>9}")
        for actor, kind in kinds:
            mine = [o for o in self.ops if o.actor.startswith(actor) and o.kind == kind]
            secs = sorted(o.seconds for o in mine)
            print(f"{actor:<8} {kind:<8} {len(mine):>5} {sum(o.ok for o in mine):>5} "
                  f"{sum(not o.ok for o in mine):>6} {secs[len(secs) // 2]:>9.1f}")
        failures = Counter((o.kind, o.reason[:150]) for o in self.ops if not o.ok)
        if failures:
            print("failed ops, by reason:")
            for (kind, reason), n in failures.most_common():
                print(f"  {n:>3} x {kind}: {reason}")
        print("catalog: " + ", ".join(f"{k} {v}" for k, v in self.catalog.items()))
        print("jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(self.job_states.items())))
        for line in self.failed_jobs:
            print(f"  {line}")
        for title, items in (("lost writes", self.lost_writes), ("lock errors shown to a user", self.lock_errors),
                             ("writes that reported failure", self.unreported_writes),
                             ("rows no op explains", self.unexplained_rows),
                             ("variants without files", self.variants_without_files),
                             ("files without rows", self.files_without_rows),
                             ("other leftovers", self.leftovers),
                             ("requests leaving the machine", self.external_requests)):
            print(f"{title}: {len(items)}")
            for item in items[:20]:
                print(f"  {item}")
        by_kind = Counter(o.kind for o in self.ops if not o.ok)
        print(f"failed ops: {sum(by_kind.values())} of {len(self.ops)} ("
              + (", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) or "none") + ")")
        print("RESULT: " + ("clean" if self.clean else "NOT clean: " + "; ".join(self.verdict_problems)), flush=True)


def scan(report: LoadReport, actor: str, where: str, text: str) -> None:
    """Count what a user must never read in a page's text or a command's output."""
    for name, pattern in LOCK_PATTERNS.items():
        for m in pattern.finditer(text):
            excerpt = text[max(0, m.start() - 100):m.end() + 100].replace("\n", " ")
            report.lock_errors.append(f"{actor} {where}: {name!r} in ...{excerpt}...")


def ids_in(text: str, kind: str) -> list[str]:
    return list(dict.fromkeys(ID[kind].findall(text)))


# ------------------------------------------------------------------------------ shared state


class World:
    """What the actors know about the catalog, read through the catalog API (as a page would)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    @staticmethod
    def _snapshot() -> dict[str, Any]:
        from catalog import sources, variants

        out: dict[str, Any] = {"demo": None, "digits": None, "fp32": None}
        for s in sources.list_sources(limit=50)[0]:
            vs = variants.variants_of_source(s.id, include_deleted=False)
            root = next((v for v in vs if v.id == s.root_variant_id), None)
            if s.task == "image-classification":
                out["digits"] = (s.id, s.root_variant_id)
                fp32 = next((v for v in vs if (v.backend, v.conversion) == ("onnxrt", "export")), None)
                out["fp32"] = fp32.id if fp32 else None
            elif root is not None and root.format == "gguf":
                out["demo"] = (s.id, s.root_variant_id)
        out["sources"] = [s.id for s in sources.list_sources(limit=50)[0]]
        return out

    async def snapshot(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._snapshot)


# ------------------------------------------------------------------------------ browser sessions

PAGES = {  # name -> (path with {source}, text that says the page has rendered)
    "catalog": ("", "Model Catalog"),
    "model": ("model?id={source}", "Lineage"),
    "benchmarks": ("benchmarks?source={source}", "Benchmarks"),
    "jobs": ("jobs", "Jobs run in their own processes"),
    "storage": ("storage", "Files in the data root that no variant"),
}


async def read_page(page: Any, report: LoadReport, actor: str, where: str) -> str:
    await page.wait_for_timeout(1200)  # let the script run finish (fragments, spinners)
    text = await page.inner_text("body")
    scan(report, actor, where, text)
    shown = await page.locator("[data-testid='stException']").count()
    if shown:
        report.lock_errors.append(f"{actor} {where}: {shown} exception box(es) shown")
    return text


async def timed_op(report: LoadReport, op: Op, coro: Any) -> Op:
    op.started = time.monotonic()
    try:
        await coro
    except Exception as exc:  # noqa: BLE001 - a timeout or a missing element: the op failed, say why
        op.ok = False
        op.reason = op.reason or f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    op.ended = time.monotonic()
    op.seconds = op.ended - op.started
    report.ops.append(op)
    return op


async def open_page(page: Any, url: str, report: LoadReport, op: Op, name: str, source: str | None) -> None:
    path, marker = PAGES[name]
    await page.goto(f"{url}/{path.format(source=source or '')}")
    await page.get_by_text(marker).first.wait_for()
    await read_page(page, report, op.actor, name)
    op.ok = True


async def click_import(page: Any, url: str, report: LoadReport, op: Op, button: str, on_catalog: bool) -> None:
    if not on_catalog:
        await page.goto(f"{url}/import")
        await page.get_by_text("Three embedded models").wait_for()
    await page.get_by_role("button", name=button).first.click()
    # On the Catalog page, a click that lands after another import filled the catalog reruns the page
    # as the list (the button is gone, nothing is queued): what the user then sees is the demo listed.
    answers = r"Queued job|already being made|already exists" + (r"|\d+ source model\(s\)" if on_catalog else "")
    await page.get_by_text(re.compile(answers)).or_(
        page.locator("[data-testid='stAlertContentError']")).first.wait_for()
    text = await read_page(page, report, op.actor, "import")
    # Only the jobs this submit reported: the page also lists other jobs on the same input.
    op.jobs = ids_in("\n".join(line for line in text.splitlines()
                               if "Queued job" in line or "already being made" in line), "j")
    op.ok = bool(op.jobs) or "already exists" in text or (on_catalog and "source model(s)" in text)
    if not op.ok:
        op.reason = "no job queued: " + text[-200:].replace("\n", " ")


async def submit_convert(page: Any, url: str, report: LoadReport, op: Op, source: str, variant: str,
                         conversion: str, tick: str | None) -> None:
    await page.goto(f"{url}/convert?source={source}&variant={variant}&conversion={conversion}")
    await page.get_by_text("Input variant", exact=True).wait_for()
    if tick:
        await page.get_by_text("already quantized").first.wait_for()
        await page.get_by_text(tick, exact=True).click()
    await page.get_by_text("Plan", exact=True).wait_for()
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text(re.compile(r"Queued job|already being made|already exists")).or_(
        page.locator("[data-testid='stAlertContentError']")).first.wait_for()
    text = await read_page(page, report, op.actor, "convert")
    # Only the jobs this submit reported: the page also lists other jobs on the same input.
    op.jobs = ids_in("\n".join(line for line in text.splitlines()
                               if "Queued job" in line or "already being made" in line), "j")
    existing = re.search(r"This variant already exists \((v-[0-9a-f]{16})\)", text)
    op.variant = existing.group(1) if existing else None
    op.ok = bool(op.jobs or op.variant)
    if not op.ok:
        op.reason = "nothing queued: " + text[-300:].replace("\n", " ")


async def save_tag(page: Any, url: str, report: LoadReport, op: Op, source: str) -> None:
    """Add op.tags to a source on its Model page's Notes & tags form, keeping the tags it shows."""
    await page.goto(f"{url}/model?id={source}")
    await page.get_by_text("Lineage").first.wait_for()
    await page.get_by_role("tab", name="Notes & tags").click()
    box = page.get_by_label("Tags (comma separated)")
    # The box is drawn before the script run fills it: read it until two reads 1.5 s apart agree.
    value, last = await box.input_value(), None
    for _ in range(20):
        if value == last:
            break
        await page.wait_for_timeout(1500)
        value, last = await box.input_value(), value
    shown = [t.strip() for t in value.split(",") if t.strip()]
    op.output = f"the form showed the tags {shown}"
    await box.fill(", ".join(shown + op.tags))
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved.").or_(page.locator("[data-testid='stAlertContentError']")).first.wait_for()
    text = await read_page(page, report, op.actor, "model (tags)")
    op.ok = "Saved." in text
    if not op.ok:
        op.reason = "not saved: " + text[-300:].replace("\n", " ")


async def browser_session(browser: Any, url: str, i: int, deadline: float, report: LoadReport, world: World,
                          rng: random.Random) -> None:
    actor = f"browser-{i}"
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.on("request", lambda r: report.external_requests.append(r.url) if leaves_machine(r.url) else None)
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        # First: the Catalog; while it is empty, everyone clicks "Import the demo model" (the README's first step).
        op = Op(actor, "page", "catalog")
        await timed_op(report, op, open_page(page, url, report, op, "catalog", None))
        if await page.get_by_role("button", name="Import the demo model").count():
            op = Op(actor, "import", "demo (Catalog page)")
            await timed_op(report, op, click_import(page, url, report, op, "Import the demo model", True))
        while time.monotonic() < deadline:
            snap = await world.snapshot()
            roll = rng.random()
            if roll < 0.12:
                button = rng.choice(["Import the demo model", "Train and import the digits CNN"])
                op = Op(actor, "import", f"{button} (Import page)")
                await timed_op(report, op, click_import(page, url, report, op, button, False))
            elif roll < 0.2 and snap["sources"]:
                source = rng.choice(snap["sources"])
                op = Op(actor, "tag", f"Notes & tags of {source} (Model page)", source=source,
                        tags=[f"load-{actor}-{len(report.ops)}"])
                await timed_op(report, op, save_tag(page, url, report, op, source))
            elif roll < 0.4 and (snap["demo"] or snap["digits"]):
                choices = []
                if snap["demo"]:
                    choices.append((snap["demo"][0], snap["demo"][1], "llamacpp.quantize", "allow requantize"))
                if snap["digits"] and not snap["fp32"]:
                    choices.append((snap["digits"][0], snap["digits"][1], "onnxrt.export", None))
                if snap["fp32"]:
                    choices += [(snap["digits"][0], snap["fp32"], c, None) for c in BROWSER_ONNX]
                source, variant, conversion, tick = rng.choice(choices)
                op = Op(actor, "convert", f"{conversion} of {variant} (Convert page)", source=source)
                await timed_op(report, op, submit_convert(page, url, report, op, source, variant, conversion, tick))
            else:
                name = rng.choice(list(PAGES))
                source = rng.choice(snap["sources"]) if snap["sources"] else None
                if name in ("model", "benchmarks") and source is None:
                    name = "catalog"
                op = Op(actor, "page", name, source=source)
                await timed_op(report, op, open_page(page, url, report, op, name, source))
    finally:
        await context.close()


# ------------------------------------------------------------------------------ CLI writers


def parse_json_docs(text: str) -> list[Any]:
    """Every JSON document in a command's output (convert may print a sentence beside them)."""
    docs, decoder, i = [], json.JSONDecoder(), 0
    while True:
        start = min((p for p in (text.find("{", i), text.find("[", i)) if p >= 0), default=-1)
        if start < 0:
            return docs
        try:
            doc, end = decoder.raw_decode(text, start)
            docs.append(doc)
            i = end
        except json.JSONDecodeError:
            i = start + 1


async def cli(report: LoadReport, op: Op, data_root: Path, *args: str) -> tuple[int, str, str]:
    op.started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "cli.py", "--data-root", str(data_root), "--json", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out_b, err_b = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        out_b, err_b = await proc.communicate()
        op.reason = f"timed out after {CLI_TIMEOUT_S} s"
    out, err = out_b.decode(errors="replace"), err_b.decode(errors="replace")
    op.ended = time.monotonic()
    op.seconds = op.ended - op.started
    op.output = (out + err)[-3000:]
    # The job-progress lines on stderr are fine; an error line or traceback is what a user reads.
    scan(report, op.actor, f"`cli.py {' '.join(args)}`", out + err)
    op.ok = proc.returncode == 0 and "Traceback" not in err
    if not op.ok and not op.reason:
        last = [ln for ln in err.splitlines() if ln.strip() and not re.match(r"^(queued|running|waiting)\s", ln)]
        op.reason = f"exit {proc.returncode}: " + (last[-1][:200] if last else out[-200:])
    for doc in parse_json_docs(out):
        for d in doc if isinstance(doc, list) else [doc]:
            if isinstance(d, dict) and str(d.get("id", "")).startswith("j-"):
                op.jobs.append(d["id"])
                if d.get("state") not in (None, "succeeded"):
                    op.ok = False
                    op.reason = op.reason or f"job {d['id']} {d.get('state')}: {d.get('error')}"
    op.jobs = list(dict.fromkeys(op.jobs + ids_in(out + err, "j")))
    report.ops.append(op)
    return proc.returncode or 0, out, err


async def cli_writer(data_root: Path, w: int, writers: int, deadline: float, report: LoadReport, world: World,
                     rng: random.Random, export_base: Path) -> None:
    actor = f"cli-{w}"
    mine = INT4_RECIPES[w::writers]
    live: dict[tuple, str] = {}  # my recipe -> its variant id, while my last successful op made it
    n, step = 0, w
    while time.monotonic() < deadline:
        n += 1
        snap = await world.snapshot()
        kind = WRITER_CYCLE[step % len(WRITER_CYCLE)]
        if n == 1 or not snap["digits"] or kind == "tag":
            # An import (the first writer starts with the digits CNN, the others with the demo, which the
            # browsers' first clicks import too); once the model is stored, the same command adds its tags.
            which = "demo" if (n == 1 and w % 2) or (n > 1 and snap["digits"] and rng.random() < 0.7) \
                else "digits-cnn"
            if n > 1:
                step += 1
            tag = f"load-{actor}-{n}"
            exists = snap["digits"] if which == "digits-cnn" else snap["demo"]
            op = Op(actor, "tag" if exists else "import", f"{which} --tags {tag}", tags=[tag])
            args = ["import", "--demo"] if which == "demo" else ["import", "--example", which]
            await cli(report, op, data_root, *args, "--tags", tag)
            for doc in parse_json_docs(op.output):
                if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
                    op.source = doc["result"].get("source_id")
            continue
        src, root = snap["digits"]
        if not snap["fp32"]:
            op = Op(actor, "convert", f"onnxrt.export {root}", source=src)
            await cli(report, op, data_root, "convert", "onnxrt.export", root)
            op.variant = next(iter(variant_ids(op)), None)
            continue
        step += 1
        if kind in ("export", "delete") and not live:
            kind = "convert"
        if kind == "convert":
            recipe = rng.choice([r for r in mine if r not in live] or mine)
            algorithm, block, symmetric = recipe
            op = Op(actor, "convert", f"onnxrt.quantize_int4 {algorithm} block {block} "
                    f"{'symmetric' if symmetric else 'asymmetric'}", source=src)
            await cli(report, op, data_root, "convert", "onnxrt.quantize_int4", snap["fp32"],
                      "--algorithm", algorithm, "--block-size", str(block),
                      "--symmetric" if symmetric else "--no-symmetric")
            op.variant = next(iter(variant_ids(op)), None)
            if op.ok and op.variant:
                live[recipe] = op.variant
        elif kind == "bench":
            target = rng.choice([*live.values(), snap["fp32"]])
            op = Op(actor, "bench", f"bench run {target} --profile quick", variant=target, source=src)
            await cli(report, op, data_root, "bench", "run", target, "--profile", "quick")
        elif kind == "export":
            variant = live[rng.choice(list(live))]
            op = Op(actor, "export", f"export {variant}", variant=variant, source=src)
            await cli(report, op, data_root, "export", variant, str(export_base / f"{actor}-{n}"))
            for doc in parse_json_docs(op.output):
                if isinstance(doc, dict) and "path" in doc:
                    op.export_path = doc["path"]
        else:
            recipe = rng.choice(list(live))
            op = Op(actor, "delete", f"delete {live[recipe]}", variant=live[recipe], source=src)
            await cli(report, op, data_root, "delete", live[recipe], "--yes")
            if op.ok:
                live.pop(recipe)


def variant_ids(op: Op) -> list[str]:
    """The variant a convert made or found: its job's target, or the 'already exists' sentence's id."""
    found = []
    for doc in parse_json_docs(op.output):
        if isinstance(doc, dict) and doc.get("target_variant_id"):
            found.append(doc["target_variant_id"])
    return found or ids_in(op.output, "v")


# ------------------------------------------------------------------------------ the run


async def _drive(url: str, data_root: Path, sessions: int, writers: int, seconds: float, report: LoadReport,
                 seed: int, export_base: Path) -> None:
    from playwright.async_api import async_playwright

    world = World()
    deadline = time.monotonic() + seconds
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tasks = [browser_session(browser, url, i, deadline, report, world, random.Random(seed * 100 + i))
                     for i in range(sessions)]
            tasks += [cli_writer(data_root, w, writers, deadline, report, world, random.Random(seed * 100 + 50 + w),
                                 export_base) for w in range(writers)]
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    report.ops.append(Op("driver", "crash", "", reason=f"{type(r).__name__}: {r}"))
            # Queued jobs finish before the checks; the Jobs page is read once more at the end.
            try:
                await asyncio.to_thread(wait_for_jobs)
            except TimeoutError as exc:  # the checks still run; failed_jobs lists what is still active
                report.ops.append(Op("driver", "crash", "waiting for jobs", reason=str(exc)))
            context = await browser.new_context()
            page = await context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            op = Op("browser-end", "page", "jobs")
            await timed_op(report, op, open_page(page, url, report, op, "jobs", None))
        finally:
            await browser.close()


def wait_for_jobs(timeout_s: float = JOBS_TIMEOUT_S) -> None:
    from catalog import jobs
    from catalog.records import ACTIVE_JOB_STATES

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if not jobs.list_jobs(states=ACTIVE_JOB_STATES, limit=1000):
            return
        time.sleep(2)
    raise TimeoutError(f"jobs still active after {timeout_s} s")


def run_load(data_root: Path, sessions: int = 8, writers: int = 2, seconds: float = 300,
             seed: int = 1) -> LoadReport:
    """Drive the app and the CLI on `data_root` for `seconds`, then check the catalog; print the figures."""
    start = time.monotonic()
    data_root = Path(data_root)
    use_data_root(data_root)
    report = LoadReport(sessions=sessions, writers=writers, seconds=seconds)
    export_base = Path(tempfile.mkdtemp(prefix="load-exports-", dir=data_root.parent))
    with running_app(data_root) as url:
        asyncio.run(_drive(url, data_root, sessions, writers, seconds, report, seed, export_base))
    check(report)
    report.wall_s = time.monotonic() - start
    report.load_avg = os.getloadavg()
    # Every op with what it printed, for a look afterwards.
    (data_root.parent / "load-ops.json").write_text(json.dumps([asdict(o) for o in report.ops], indent=1))
    report.print()
    return report


# ------------------------------------------------------------------------------ checks


def check(report: LoadReport) -> None:
    from catalog import db, jobs, sources, storage, variants
    from catalog.files import sha256_file

    all_jobs = {j.id: j for j in jobs.list_jobs(limit=100_000)}
    all_sources = {s.id: s for s in sources.list_sources(limit=100_000)[0]}
    with db.connect(write=False) as conn:
        ids = [r["id"] for r in conn.query("SELECT id FROM variants")]
        results = conn.query("SELECT variant_id, job_id FROM benchmark_results")
    all_variants = {i: variants.get_variant(i) for i in ids}
    report.job_states = dict(Counter(j.state for j in all_jobs.values()))
    report.catalog = {"sources": len(all_sources), "variants": len(all_variants),
                      "available": sum(v.state == "available" for v in all_variants.values()),
                      "deleted": sum(v.state == "deleted" for v in all_variants.values()),
                      "benchmark results": len(results)}
    for j in all_jobs.values():
        if j.state not in ("succeeded", "cancelled"):
            report.failed_jobs.append(f"{j.id} {j.kind} {j.state}: {j.error}")
            scan(report, "jobs", f"job {j.id}'s error", j.error or "")

    # What the ops that reported success say the catalog holds.
    known_jobs: set[str] = {jid for o in report.ops for jid in o.jobs}
    expected_sources: set[str] = set()
    for o in report.ops:
        if o.kind in ("import", "tag"):
            for jid in o.jobs:
                job = all_jobs.get(jid)
                if job is None:
                    report.lost_writes.append(f"{o.actor} {o.what}: its job {jid} is not in the catalog")
                    continue
                sid = (job.result or {}).get("source_id") or job.source_id
                if job.state == "succeeded" and sid:
                    o.source = sid
                    if o.actor.startswith("browser"):  # the click queued it; the job's end is its outcome
                        o.ok = True
                elif o.actor.startswith("browser") and o.ok:
                    o.ok, o.reason = False, f"job {jid} {job.state}: {job.error}"
            if o.ok and o.source:
                if o.jobs:  # an import (a tag saved on the Model page makes no source)
                    expected_sources.add(o.source)
                src = all_sources.get(o.source)
                if src is None:
                    report.lost_writes.append(f"{o.actor} {o.what}: source {o.source} missing")
                elif not set(o.tags) <= set(src.tags):
                    report.lost_writes.append(f"{o.actor} {o.what}: tags {o.tags} missing on {o.source} "
                                              f"(it has {src.tags})")
            elif not o.ok and o.tags:
                for s in all_sources.values():
                    if set(o.tags) & set(s.tags):
                        report.unreported_writes.append(f"{o.actor} {o.what} failed ({o.reason}), yet "
                                                        f"{s.id} has its tags")
    for jid in set(all_jobs) - known_jobs:
        report.unexplained_rows.append(f"job {jid} ({all_jobs[jid].title}): no op queued it")
    for sid in set(all_sources) - expected_sources:
        report.unexplained_rows.append(f"source {sid} ({all_sources[sid].name}): no successful import made it")

    made: dict[str, list[Op]] = {}
    for o in report.ops:
        if o.kind != "convert":
            continue
        if o.actor.startswith("browser"):  # the job the page queued or attached to decides
            for jid in o.jobs:
                job = all_jobs.get(jid)
                if job is None:
                    o.ok, o.reason = False, f"job {jid} is not in the catalog"
                    report.lost_writes.append(f"{o.actor} {o.what}: job {jid} not in the catalog")
                elif job.state != "succeeded":
                    o.ok, o.reason = False, f"job {jid} {job.state}: {job.error}"
                else:
                    o.variant = job.target_variant_id
        if o.ok and o.variant:
            made.setdefault(o.variant, []).append(o)

    # Each writer owns its recipes, so the last successful op on a variant sets its state.
    final: dict[str, Op] = {}
    for o in sorted((o for o in report.ops if o.ok and o.variant and o.kind in ("convert", "delete")),
                    key=lambda o: o.ended):
        final[o.variant] = o
    for vid, o in final.items():
        v = all_variants.get(vid)
        want = "deleted" if o.kind == "delete" else "available"
        if v is None:
            report.lost_writes.append(f"{o.actor} {o.what}: variant {vid} has no row")
        elif v.state != want:
            report.lost_writes.append(f"{o.actor} {o.what} (last successful op on {vid}) but it is {v.state}")
    for o in report.ops:
        if (o.kind == "delete" and not o.ok and o.variant in all_variants and o.variant not in final
                and all_variants[o.variant].state == "deleted"):
            report.unreported_writes.append(f"{o.actor} {o.what} failed ({o.reason}), yet it is deleted")
    for vid, v in all_variants.items():
        if v.state == "deleted" and not any(o.ok and o.kind == "delete" and o.variant == vid for o in report.ops):
            report.lost_writes.append(f"variant {vid} is deleted but no delete of it reported success")
        explained = vid in made or v.job_id in known_jobs or any(
            s.root_variant_id == vid for s in all_sources.values())
        if not explained:
            report.unexplained_rows.append(f"variant {vid} ({v.label}, job {v.job_id}): no op made it")

    bench_jobs = {r["job_id"] for r in results}
    for o in report.ops:
        if o.kind == "bench" and o.ok and not any(jid in bench_jobs for jid in o.jobs):
            report.lost_writes.append(f"{o.actor} {o.what}: no result stored for jobs {o.jobs}")
        if o.kind == "export" and o.ok:
            problem = export_problem(o, all_variants)
            if problem:
                report.lost_writes.append(f"{o.actor} {o.what}: {problem}")

    for v in all_variants.values():
        if v.state != "available":
            continue
        folder = variants.variant_path(v)
        for f in v.files:
            path = folder / f.relpath
            if not path.is_file():
                report.variants_without_files.append(f"{v.id} ({v.label}): {f.relpath} missing")
            elif path.stat().st_size != f.size_bytes or sha256_file(path) != f.sha256:
                report.variants_without_files.append(f"{v.id} ({v.label}): {f.relpath} differs from its row")
        if not v.files:
            report.variants_without_files.append(f"{v.id} ({v.label}): no file rows")
    for orphan in storage.find_orphans():
        line = f"{orphan.path} ({orphan.size_bytes:,} bytes): {orphan.reason}"
        (report.files_without_rows if orphan.reason == "no variant row" else report.leftovers).append(line)


def export_problem(op: Op, all_variants: dict[str, Any]) -> str | None:
    if not op.export_path or not Path(op.export_path).is_dir():
        return f"the export folder {op.export_path} is missing"
    folder = Path(op.export_path)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return f"manifest.json unreadable: {exc}"
    from catalog.files import sha256_file

    for f in manifest["files"]:
        path = folder / f["relpath"]
        if not path.is_file() or sha256_file(path) != f["sha256"]:
            return f"{f['relpath']} missing or different in the export"
    from catalog.bundle import ORIGINAL_CARD

    v = all_variants.get(op.variant or "")
    # the variant's own card is exported as README.original.md (README.md is the generated card)
    exported = sorted(ORIGINAL_CARD if f.relpath == "README.md" else f.relpath for f in v.files) if v else None
    if exported is not None and exported != sorted(f["relpath"] for f in manifest["files"]):
        return "the manifest's files differ from the variant's"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-root", type=Path, help="an empty folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    data_root = args.data_root or Path(tempfile.mkdtemp(prefix="load-")) / "data"
    print(f"data root: {data_root}", flush=True)
    report = run_load(data_root, args.sessions, args.writers, args.seconds, seed=args.seed)
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
