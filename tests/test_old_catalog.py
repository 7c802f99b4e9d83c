"""A catalog made before the move opens and works after it.

The code of commit a14afbf (the last commit before backends/ and bench/job.py were split into
per-toolkit packages) is unpacked with `git archive` and its own cli.py, run with this venv's
python, fills a fresh data root: the demo GGUF imported and requantized to Q8_0 (llama.cpp), the
digits CNN imported, exported to ONNX (ONNX Runtime) and benchmarked (quick). What the old code
listed (sources, variants, recipes, jobs, results, its plans) is recorded; the current code then
opens the same data root and must list, resolve, plan, read back and render all of it alike.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
OLD_COMMIT = "a14afbf"  # the last commit before the restructure into per-toolkit packages
ROOT_ENV = "MODEL_CATALOG_HOME"  # the data root, in the old code as in the current one
CLI_TIMEOUT_S = 300

# The conversions the old code runs: (registry key, CLI options).
Q8_CONVERSION = ("llamacpp.quantize", ["--types", "Q8_0", "--allow-requantize"])
ONNX_CONVERSION = ("onnxrt.export", [])


def _cli(tree: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python cli.py ARGS` of one code tree (old or current) on the data root; must exit 0."""
    env = dict(os.environ, PYTHONPATH=str(tree), **{ROOT_ENV: str(root)})
    proc = subprocess.run([sys.executable, str(tree / "cli.py"), *args], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, check=False)
    which = "old" if tree != REPO else "current"
    assert proc.returncode == 0, (f"{which} cli.py {' '.join(args)} exited {proc.returncode}:\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def _json(tree: Path, root: Path, *args: str) -> Any:
    return json.loads(_cli(tree, root, "--json", *args).stdout)


def _job(tree: Path, root: Path, *args: str) -> dict[str, Any]:
    """Run a job through the CLI (here, waiting for it); its JSON, checked to have succeeded."""
    job = _json(tree, root, *args)
    assert job["state"] == "succeeded", job.get("error")
    return job


def _check_lines(tree: Path, root: Path, conversion: str, variant_id: str, options: list[str]) -> list[str]:
    """The plan `convert --check` prints: one line per step, `<target id> <conversion> <options>[ (exists)]`."""
    out = _cli(tree, root, "convert", conversion, variant_id, *options, "--check").stdout
    return [line for line in out.splitlines() if line.startswith("v-")]


def _old_tree(dest: Path) -> Path:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the old code cannot be unpacked")
    known = subprocess.run([git, "-C", str(REPO), "cat-file", "-e", f"{OLD_COMMIT}^{{commit}}"],
                           capture_output=True, check=False)
    if known.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} is not in this checkout (a shallow clone?); the test needs full history")
    archive = subprocess.run([git, "-C", str(REPO), "archive", OLD_COMMIT], capture_output=True, check=True)
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    assert (dest / "cli.py").is_file()
    return dest


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory, demo_gguf: Path, llama_tools: Path) -> dict[str, Any]:
    """A data root filled by the old code, and what the old code said about it."""
    base = tmp_path_factory.mktemp("old-catalog")
    tree = _old_tree(base / "code")
    root = base / "data"

    llm = _job(tree, root, "import", "--demo")["result"]
    q8 = _job(tree, root, "convert", Q8_CONVERSION[0], llm["variant_id"], *Q8_CONVERSION[1])
    cnn = _job(tree, root, "import", "--example", "digits-cnn")["result"]
    onnx = _job(tree, root, "convert", ONNX_CONVERSION[0], cnn["variant_id"], *ONNX_CONVERSION[1])
    bench = _job(tree, root, "bench", "run", onnx["target_variant_id"], "--profile", "quick")

    source_ids = [llm["source_id"], cnn["source_id"]]
    shown = {sid: _json(tree, root, "show", sid) for sid in source_ids}
    variant_ids = [v["id"] for sid in source_ids for v in shown[sid]["variants"]]
    conversions = {  # made variant id -> (conversion, input, CLI options, job, the old plan's lines)
        q8["target_variant_id"]: (Q8_CONVERSION[0], llm["variant_id"], Q8_CONVERSION[1], q8),
        onnx["target_variant_id"]: (ONNX_CONVERSION[0], cnn["variant_id"], ONNX_CONVERSION[1], onnx),
    }
    plans = {vid: _check_lines(tree, root, conv, parent, opts) for vid, (conv, parent, opts, _) in conversions.items()}

    import duckdb

    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    try:
        migrations = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    finally:
        con.close()
    return {
        "root": root,
        "tree": tree,
        "migrations": migrations,
        "source_ids": source_ids,
        "listed": _json(tree, root, "list"),
        "shown": shown,
        "variants": {vid: _json(tree, root, "show", vid) for vid in variant_ids},
        "jobs": {j["id"]: j for j in (_json(tree, root, "jobs", "show", job_id) for job_id in
                                      [q8["id"], onnx["id"], bench["id"]])},
        "conversions": conversions,
        "plans": plans,
        "result_id": bench["result"]["result_id"],
        "bench_source": cnn["source_id"],
        "results": _json(tree, root, "bench", "export", cnn["source_id"], "--format", "json"),
    }


@pytest.fixture
def catalog_root(old: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process (the current code) pointed at the old data root."""
    from catalog import config, db

    monkeypatch.setenv(config.ROOT_ENV, str(old["root"]))
    db.reset_migration_cache()
    return old["root"]


# What a migration changed on purpose, and nothing else: 0007 labels an imported Hugging Face
# folder's precision as conversions do (config.json's "float32" became F32).
RELABELLED = {("hf", "precision"): {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}}


def _same(old_record: dict[str, Any], new_record: dict[str, Any], what: str) -> None:
    """Every field the old code showed is shown alike by the current code."""
    missing = sorted(set(old_record) - set(new_record))

    def relabelled(k: str) -> bool:
        labels = RELABELLED.get((old_record.get("format"), k), {})
        return labels.get(old_record[k]) == new_record[k]

    differ = {k: (old_record[k], new_record[k]) for k in old_record if k in new_record
              and old_record[k] != new_record[k] and not relabelled(k)}
    assert not missing and not differ, f"{what}: fields gone {missing}; fields changed (old, new) {differ}"


# --------------------------------------------------------------------------------------------- tests


def test_the_old_catalog_opens_and_is_migrated(old, catalog_root: Path) -> None:
    from catalog import db
    from catalog.migrations import MIGRATIONS

    names = [name for name, _ in MIGRATIONS]
    gone = old["migrations"] - set(names)
    assert not gone, f"migrations the old code applied are gone: {gone}"
    with db.connect() as conn:
        done = {r["name"] for r in conn.query("SELECT name FROM schema_migrations")}
    assert set(names) <= done, f"not applied on open: {set(names) - done}"


def test_sources_variants_and_recipes_are_listed_as_before(old, catalog_root: Path) -> None:
    from catalog import sources, variants

    rows, _ = sources.list_sources()
    assert sorted(s.id for s in rows) == sorted(old["source_ids"])
    for sid in old["source_ids"]:
        assert [v.id for v in variants.variants_of_source(sid)] == [v["id"] for v in old["shown"][sid]["variants"]]

    # The current CLI shows every source, variant and job as the old one did (ids, recipes, options,
    # toolkit versions, files, metadata, states).
    current = REPO
    listed = _json(current, catalog_root, "list")
    assert [s["id"] for s in listed] == [s["id"] for s in old["listed"]]
    for old_src, new_src in zip(old["listed"], listed, strict=True):
        _same(old_src, new_src, f"list {old_src['id']}")
    for sid, shown in old["shown"].items():
        now = _json(current, catalog_root, "show", sid)
        _same(shown["source"], now["source"], f"show {sid}")
        assert [v["id"] for v in now["variants"]] == [v["id"] for v in shown["variants"]]
        for old_v, new_v in zip(shown["variants"], now["variants"], strict=True):
            _same(old_v, new_v, f"show {sid}: variant {old_v['id']}")
    for vid, shown in old["variants"].items():
        _same(shown, _json(current, catalog_root, "show", vid), f"show {vid}")
    for job_id, job in old["jobs"].items():
        _same(job, _json(current, catalog_root, "jobs", "show", job_id), f"jobs show {job_id}")

    for vid, (conversion, parent, _, job) in old["conversions"].items():
        v = variants.get_variant(vid)
        assert (v.parent_id, f"{v.backend}.{v.conversion}") == (parent, conversion)
        assert v.options == job["recipe"]["options"] and v.toolkit_versions == job["recipe"]["toolkit_versions"]


def test_every_variant_resolves_to_its_files(old, catalog_root: Path) -> None:
    from backends import registry
    from catalog import variants

    for vid, shown in old["variants"].items():
        v = variants.get_variant(vid)
        assert v.state == "available", (vid, v.state)
        main = registry.main_file(v)
        assert main.exists(), f"{vid}: main file {main} does not exist"
        assert variants.check_files(v) == "available", vid
        folder = variants.variant_path(v)
        assert {f.relpath: f.size_bytes for f in v.files} == {f["relpath"]: f["size_bytes"] for f in shown["files"]}
        assert all((folder / f.relpath).stat().st_size == f.size_bytes for f in v.files), vid


def test_a_conversion_done_by_the_old_code_is_recognised(old, catalog_root: Path) -> None:
    """Same recipe, same toolkit versions: the plan's target id is the stored variant's, marked as existing."""
    from catalog import jobs, variants

    checked = []
    for vid, (conversion, parent, options, _) in old["conversions"].items():
        stored = variants.get_variant(vid).toolkit_versions
        installed = {dist: _installed(dist) for dist in stored}
        if installed != stored:
            continue  # another toolkit version is another variant
        assert old["plans"][vid] and old["plans"][vid][-1].split()[0] == vid, old["plans"][vid]
        now = _check_lines(REPO, catalog_root, conversion, parent, options)
        assert [line.split()[0] for line in now] == [line.split()[0] for line in old["plans"][vid]], (now, old["plans"])
        assert now[-1].split()[:2] == [vid, conversion] and now[-1].endswith("(exists)"), now
        checked.append(vid)
    if not checked:
        pytest.skip("the installed toolkit versions differ from the old variants'; their ids rightly differ")

    # Submitting it again queues nothing and makes nothing.
    before = ({j.id for j in jobs.list_jobs(limit=1000)},
              {v.id for sid in old["source_ids"] for v in variants.variants_of_source(sid)})
    vid = checked[0]
    conversion, parent, options, _ = old["conversions"][vid]
    out = _cli(REPO, catalog_root, "convert", conversion, parent, *options).stdout
    assert vid in out and "already exists" in out, out
    after = ({j.id for j in jobs.list_jobs(limit=1000)},
             {v.id for sid in old["source_ids"] for v in variants.variants_of_source(sid)})
    assert after == before


def _installed(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def test_benchmark_results_read_back(old, catalog_root: Path) -> None:
    from catalog import results

    [old_result] = [r for r in old["results"] if r["id"] == old["result_id"]]
    latest = {r.id: r for r in results.latest_results(old["bench_source"], "quick", with_raw=True)}
    assert sorted(latest) == sorted(r["id"] for r in old["results"])
    mine = latest[old["result_id"]]
    assert mine.variant_id == old_result["variant_id"] and mine.metrics == old_result["metrics"]
    assert mine.raw == old_result["raw"] and mine.fingerprint == old_result["fingerprint"]
    assert old["result_id"] in {r.id for r in results.results_for_variant(old_result["variant_id"])}
    exported = _json(REPO, catalog_root, "bench", "export", old["bench_source"], "--format", "json")
    assert [r["id"] for r in exported] == [r["id"] for r in old["results"]]
    for old_r, new_r in zip(old["results"], exported, strict=True):
        _same(old_r, new_r, f"bench export: result {old_r['id']}")


def test_the_pages_render_the_old_catalog(old, catalog_root: Path) -> None:
    from streamlit.testing.v1 import AppTest

    def page(name: str, **query: str) -> AppTest:
        at = AppTest.from_file(str(REPO / "pages" / f"{name}.py"), default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, (name, query, [e.value for e in at.exception])
        return at

    def text(at: AppTest) -> str:
        return "\n".join(str(e.value) for kind in (at.title, at.markdown, at.caption, at.info, at.warning, at.error)
                         for e in kind)

    from ui.fmt import escape_md

    browse = text(page("browse"))
    names = {s["id"]: escape_md(s["name"]) for s in old["listed"]}  # as the markdown source shows them
    assert all(name in browse for name in names.values()), browse

    for sid, shown in old["shown"].items():
        for v in shown["variants"]:
            at = page("model", id=sid, variant=v["id"])
            assert at.title[0].value == names[sid]
            assert at.selectbox(key="variant_pick").value == v["id"]
            shown_text = text(at)
            assert f"{v['backend']} · {v['conversion']}" in shown_text, shown_text
            options = at.selectbox(key="variant_pick").options
            assert any(v["id"] in o for o in options) and not any("missing" in o for o in options), options

    at = page("benchmarks", source=old["bench_source"], profile="quick")
    assert "No quick results" not in text(at)
