"""Device-run bundles (issue 26): a bundle of a GGUF variant of the demo, and one of ONNX Runtime
GenAI, OpenVINO IR and MLX variants of a tiny Llama, each run by its own script in a process that
cannot import this project, imported as device runs, agree with the catalog's own runs of the
same protocol; a tampered bundle, a result of another protocol version and malformed results are
refused with nothing stored."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.compare_view import CompareSpec, build_view, candidate_results
from bench.jobs.common import submit_benchmarks
from catalog import db, results
from catalog.access import local_admin
from catalog.errors import InvalidInputError
from service import actions
from tests.helpers.bundles import bare_env, bundle_and_run, run_bundle
from worker.runner import run_to_completion

logger = logging.getLogger(__name__)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _count() -> int:
    with db.connect(write=False) as conn:
        return conn.query("SELECT count(*) AS n FROM benchmark_results")[0]["n"]


def _catalog_result(chain) -> results.BenchmarkResult:
    """This machine's quick run of the Q4_K_M variant (test_bench's, when it ran first)."""
    q4 = chain["quants"]["Q4_K_M"]
    mine = [r for r in results.latest_results(chain["source"].id, "quick") if r.variant_id == q4.id
            and "imported" not in r.flags]
    if not mine:
        [sub] = submit_benchmarks([q4.id], "quick")
        job = run_to_completion(sub.job.id)
        assert job.state == "succeeded", job.error
        mine = [r for r in results.latest_results(chain["source"].id, "quick") if r.variant_id == q4.id
                and "imported" not in r.flags]
    return mine[0]


@pytest.fixture(scope="module")
def device_run(chain_data, shared_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """Bundle the Q4_K_M variant, unzip it and run it as a teammate would: made once."""
    from tests.helpers.chain import data_root_at

    with data_root_at(shared_root):
        q4 = chain_data["quants"]["Q4_K_M"]
        zipped, folder, run_s = bundle_and_run([q4.id], tmp_path_factory.mktemp("device"))
        yield {"zip": zipped, "folder": folder, "result": folder / "result.json", "variant": q4, "run_s": run_s}


def test_the_bundle_runs_without_this_project(device_run) -> None:
    folder = device_run["folder"]
    # the environment the bundle ran in cannot import the catalog
    probe = subprocess.run([sys.executable, "-I", "-c", "import catalog"], cwd=folder, env=bare_env(),
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "No module named 'catalog'" in probe.stderr
    names = zipfile.ZipFile(device_run["zip"]).namelist()
    assert {"manifest.json", "run_bundle.py", "runners/gguf.py", "README.txt"} <= set(names)
    assert any(n.startswith(f"files/{device_run['variant'].id}/") and n.endswith(".gguf") for n in names)
    for script in ("run_bundle.py", "runners/gguf.py"):  # the standard library and the runtime only
        text = (folder / script).read_text()
        assert "from catalog" not in text and "import catalog" not in text and "from bench" not in text
    result = json.loads(device_run["result"].read_text())
    assert result["machine"]["cpu"] and result["machine"]["memory_gb"] > 0
    [entry] = result["variants"]
    assert entry["raw"]["target"] == "llama.cpp CPU" and entry["raw"]["window_nll"] and entry["raw"]["generations"]


def test_the_imported_device_run_agrees_with_the_catalogs_own(device_run, chain) -> None:
    own = _catalog_result(chain)
    [rid] = actions.import_result(local_admin(), "result.json", device_run["result"].read_bytes())
    [dev] = results.results_by_id([rid])
    assert dev.flags[:2] == ["imported", "device_run"] and dev.protocol_id == own.protocol_id
    assert dev.profile == "quick" and dev.raw["machine"]["cpu"] == dev.fingerprint["cpu"]
    # quality: the same ids through the same runtime, so the same perplexity
    assert dev.metrics["perplexity"] == pytest.approx(own.metrics["perplexity"], rel=1e-4)
    assert dev.metrics["scored_positions"] == own.metrics["scored_positions"]
    # speed: logged, not asserted. Both runs share this machine with the other test worker, so a
    # ratio fails on load, not on a defect (it read 5.05 once); tests/bench measures speed.
    ratio = dev.metrics["decode_tps_p50"] / own.metrics["decode_tps_p50"]
    logger.info("device decode %.1f tok/s, catalog %.1f (ratio %.2f); perplexity %.4f vs %.4f; memory rise %.0f vs "
                "%.0f MB", dev.metrics["decode_tps_p50"], own.metrics["decode_tps_p50"], ratio,
                dev.metrics["perplexity"], own.metrics["perplexity"], dev.metrics["memory_rise_mb"],
                own.metrics["memory_rise_mb"])
    assert 0 < dev.metrics["decode_tps_min"] <= dev.metrics["decode_tps_p50"] <= dev.metrics["decode_tps_max"]
    # both beside each other on the Compare page, the device run named by its machine and kept
    # out of this machine's frontier unless included
    found = candidate_results([chain["source"].id], "quick")
    assert {own.id, dev.id} <= {r.id for r in found}
    view = build_view(CompareSpec(result_ids=[dev.id], baseline_result_id=own.id))
    point = next(p for p in view.points if p.result_id == dev.id)
    assert point.label.endswith("(device run)") and " @ " in point.label
    assert "imported from another machine" in point.unlike
    assert dev.id not in {p.result_id for p in view.speed_frontier}
    included = build_view(CompareSpec(result_ids=[dev.id], baseline_result_id=own.id, include_unlike=True))
    assert dev.id in {v.point.result_id for v in included.verdicts}


def test_a_tampered_bundle_does_not_run(device_run, tmp_path: Path) -> None:
    folder = tmp_path / "tampered"
    shutil.copytree(device_run["folder"], folder)
    (folder / "result.json").unlink()
    [weights] = list((folder / "files").rglob("*.gguf"))
    with weights.open("r+b") as f:  # one byte of the weights
        f.seek(weights.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc = run_bundle(folder)
    assert proc.returncode != 0 and "does not match the bundle" in proc.stderr
    assert not (folder / "result.json").exists()


def test_wrong_results_are_refused_and_nothing_is_stored(device_run, chain) -> None:
    good = json.loads(device_run["result"].read_text())
    entry = good["variants"][0]

    def changed(edit) -> bytes:
        data = copy.deepcopy(good)
        edit(data)
        return json.dumps(data).encode()

    cases = {
        "another protocol version": (lambda d: d["protocol"].update(version=d["protocol"]["version"] - 1),
                                     "ran protocol .* make a new bundle"),
        "another bundle version": (lambda d: d.update(bundle_version=99), "bundle version 99"),
        "a changed file hash": (lambda d: d["variants"][0]["files"][0].update(sha256="0" * 64),
                                "other files than variant"),
        "an unknown variant": (lambda d: d["variants"][0].update(id="v-0000000000000000"), "does not hold"),
        "a quality figure with no raw output": (
            lambda d: (d["variants"][0]["raw"].pop("window_nll"), d["variants"][0].update(metrics={"perplexity": 3.0})),
            "claims perplexity .* no raw output"),
        "a figure its raw output does not give": (lambda d: d["variants"][0].update(metrics={"perplexity": 3.0}),
                                                   "its raw output gives"),
        "no speed runs": (lambda d: d["variants"][0]["raw"].update(runs=[]), "no speed runs"),
        "no machine": (lambda d: d.pop("machine"), "does not describe the machine"),
    }
    before = _count()
    for what, (edit, sentence) in cases.items():
        with pytest.raises(InvalidInputError, match=sentence):
            actions.import_result(local_admin(), "result.json", changed(edit))
        logger.info("refused %s", what)
    with pytest.raises(InvalidInputError, match="not UTF-8|neither a device-run result"):
        actions.import_result(local_admin(), "result.json", device_run["result"].read_bytes()[:200])
    assert _count() == before
    assert entry["raw"]["window_nll"]  # the good result was not touched


def test_a_hashes_only_bundle_leaves_the_files_out(chain, tmp_path: Path) -> None:
    q4 = chain["quants"]["Q4_K_M"]
    out = actions.device_bundle(local_admin(), [q4.id], tmp_path / "hashes.zip", include_files=False)
    names = zipfile.ZipFile(out).namelist()
    assert not any(n.startswith("files/") for n in names) and out.stat().st_size < 2**20
    manifest = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert manifest["variants"][0]["files"][0]["sha256"] == q4.files[0].sha256 and not manifest["files_included"]
    with pytest.raises(InvalidInputError, match="text-generation protocol only|No device runner"):
        actions.device_bundle(local_admin(), [chain["hf"].id], tmp_path / "hf.zip")
    assert not (tmp_path / "hf.zip").exists()


@pytest.mark.browser
@pytest.mark.slow
def test_a_device_result_uploaded_on_the_benchmarks_page_shows_on_compare(device_run, chain) -> None:
    from catalog import config
    from tests.browser import chromium_page, open_expander, running_app, screenshot

    own = _catalog_result(chain)  # this machine's run of the same variant, beside it
    src = chain["source"]
    with running_app(config.data_root()) as url, chromium_page() as page:
        page.goto(f"{url}/benchmarks?source={src.id}&profile=quick")
        expander = page.locator("[data-testid='stExpander']").filter(has_text="Results from other machines")
        expander.wait_for(timeout=180_000)  # a loaded machine renders slowly
        expander.get_by_text("Results from other machines").click()
        # a payload with its MIME type: playwright cannot guess one for the uploader's accept list
        expander.locator("input[type='file']").set_input_files(
            {"name": "result.json", "mimeType": "application/json", "buffer": device_run["result"].read_bytes()})
        page.get_by_role("button", name="Import result").click()
        page.get_by_text("Imported 1 result(s)").wait_for(timeout=120_000)
        [dev] = [r for r in results.latest_results(src.id, "quick") if "device_run" in r.flags]
        page.goto(f"{url}/compare?source={src.id}&profile=quick&results={own.id},{dev.id}")
        page.get_by_text("Against the baseline").wait_for(timeout=180_000)
        open_expander(page, "Every metric")
        page.locator(".js-plotly-plot").nth(2).wait_for(timeout=180_000)
        body = page.inner_text("body")
        machine = dev.fingerprint["machine"]
        assert f"@ {machine} (device run)" in body
        assert "not comparable with the baseline" in body and "imported from another machine" in body
        texts = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')).map("
                              "el => JSON.stringify(el.data.map(t => t.text)))")
        assert any("(device run)" in t for t in texts)
        screenshot(page, "compare-device-run.png")


def test_onnx_genai_openvino_and_mlx_variants_run_from_one_bundle(chain_data, shared_root: Path, root: Path,
                                                                   tmp_path: Path) -> None:
    """The other runtimes' bundle runners, on a tiny Llama with the demo's tokenizer (the GGUF
    path above keeps the real demo and a full catalog run): each variant runs in the bundle's bare
    environment, and its imported perplexity is the one this catalog's runner of that format
    gives on the same windows of the same ids (the protocol's quality part)."""
    from backends.registry import main_file, open_runner
    from bench.metrics import causal_lm_quality
    from catalog import variants
    from tests.helpers.chain import convert, import_tiny_llama

    hf = import_tiny_llama(chain_data["hf"], shared_root, tmp_path / "tiny")
    made = {"onnx-genai": convert("onnxrt.genai_build", hf.id, precision="fp32")[0],
            "openvino": convert("openvino.export_llm", hf.id, weight_format="int8")[0],
            "mlx": convert("mlx.convert", hf.id)[0]}  # 4-bit, groups of 64

    _, folder, _ = bundle_and_run([v.id for v in made.values()], tmp_path)
    for fmt in made:  # every runner: the standard library, numpy and its runtime only
        text = (folder / "runners" / f"{fmt}.py").read_text()
        assert not any(f"{word} " in text for word in ("from catalog", "import catalog", "from bench", "from backends"))
    result = json.loads((folder / "result.json").read_text())
    targets = {e["format"]: e["raw"]["target"] for e in result["variants"]}
    assert targets == {"onnx-genai": "ONNX Runtime GenAI CPU", "openvino": "OpenVINO CPU", "mlx": "MLX CPU"}
    devices = {e["format"]: e["raw"]["device"] for e in result["variants"]}
    # what MLX ran on, and whether Metal was there to use: "gpu" and "true" on a Mac
    assert devices["mlx"]["device"] == "cpu" and devices["mlx"]["metal_available"] in ("true", "false")

    imported = results.results_by_id(actions.import_result(local_admin(), "result.json",
                                                           (folder / "result.json").read_bytes()))
    workload = json.loads((folder / "manifest.json").read_text())["workload"]
    ids, windows = workload["eval_ids"], [tuple(w) for w in workload["windows"]]
    for dev in imported:
        variant = variants.get_variant(dev.variant_id)
        runner = open_runner(variant.format, main_file(variant))
        own = causal_lm_quality(ids, windows, [runner.logits(ids[s:e]) for s, e in windows], None)
        runner.close()
        assert dev.flags[:2] == ["imported", "device_run"] and dev.runtime == runner.runtime
        assert dev.fingerprint["runtime_device"] == devices[variant.format]
        # the same ids through the same runtime (OpenVINO: the runtime itself in the bundle,
        # optimum-intel over the same IR in the catalog), so the same perplexity
        assert dev.metrics["perplexity"] == pytest.approx(own["perplexity"], rel=1e-4), dev.runtime
        logger.info("%s: device decode %.0f tok/s, memory rise %.0f MB, perplexity %.3f (catalog's runner %.3f)",
                    dev.runtime, dev.metrics["decode_tps_p50"], dev.metrics["memory_rise_mb"],
                    dev.metrics["perplexity"], own["perplexity"])
    view = build_view(CompareSpec(result_ids=[r.id for r in imported], baseline_result_id=imported[0].id,
                                  include_unlike=True))
    assert len(view.points) == 3 and all("(device run)" in p.label for p in view.points)
