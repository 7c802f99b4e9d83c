"""Reports of the upstream benchmark tools, imported (issue 26): real outputs of the built
llama-bench on the demo GGUF (JSON, JSONL, CSV, markdown) and of benchmark_app (from the openvino
package) on a small IR; hand-written files only for the malformed cases."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from backends.llamacpp import tools as llamacpp_tools
from backends.registry import main_file
from catalog import audit, db, results, variants
from catalog.access import local_admin
from catalog.errors import InvalidInputError
from service import actions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BENCHMARK_APP = Path(sys.executable).with_name("benchmark_app")


def _count() -> int:
    with db.connect(write=False) as conn:
        return conn.query("SELECT count(*) AS n FROM benchmark_results")[0]["n"]


def _llama_bench(model: Path, fmt: str) -> str:
    return subprocess.run([str(llamacpp_tools.tool_path("llama-bench")), "-m", str(model), "-p", "16", "-n", "8",
                           "-r", "2", "-t", "2", "-o", fmt], capture_output=True, text=True, check=True,
                          timeout=300).stdout


def _tiny_ir(folder: Path) -> Path:
    """A two-layer IR written by openvino itself (a matmul and a relu)."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    folder.mkdir(parents=True)
    x = ops.parameter([1, 16], np.float32, name="x")
    w = ops.constant(np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    ov.save_model(ov.Model([ops.relu(ops.matmul(x, w, False, False))], [x], "tiny"), folder / "tiny.xml")
    return folder


@pytest.fixture
def gguf(demo_source, llama_tools):
    return variants.get_variant(demo_source.root_variant_id)


def test_llama_bench_output_imports_in_every_format(gguf, tmp_path: Path, capsys) -> None:
    import cli

    model = main_file(gguf)
    for fmt in ("json", "jsonl", "csv", "md"):
        text = _llama_bench(model, fmt)
        if fmt == "md":  # the table names no file: the user picks the variant
            with pytest.raises(InvalidInputError, match="does not name the model file it ran; name the variant"):
                actions.import_result(local_admin(), "bench.md", text.encode())
            [rid] = actions.import_result(local_admin(), "bench.md", text.encode(), gguf.id)
        elif fmt == "csv":  # through the command line
            path = tmp_path / "bench.csv"
            path.write_text(text)
            assert cli.main(["--json", "bench", "import", str(path)]) == cli.EXIT_OK
            [rid] = json.loads(capsys.readouterr().out)["result_ids"]
        else:  # matched by the file it ran: the catalog's own copy, by its hash
            [rid] = actions.import_result(local_admin(), f"bench.{fmt}", text.encode())
        [r] = results.results_by_id([rid])
        assert r.variant_id == gguf.id and r.protocol_id == "imported:llama-bench" and r.profile == "imported"
        assert r.flags == ["imported", "upstream_report"]
        assert r.metrics["decode_tps_p50"] > 0 and r.metrics["prefill_tps_p50"] > 0
        assert r.toolkit_versions["llama-bench"].endswith("(0)") or r.toolkit_versions["llama-bench"]
        assert r.fingerprint["machine"] and r.raw["report"]["layout"] == ("markdown" if fmt == "md" else "structured")
        if fmt == "json":  # the median of the repetitions' tokens/s, read by field name
            rows = json.loads(text)
            tg = next(row for row in rows if row["n_gen"] > 0)
            assert r.metrics["decode_tps_p50"] == pytest.approx(statistics.median(tg["samples_ts"]))
            assert r.fingerprint["cpu"] == rows[0]["cpu_info"]
    entries = audit.entries(action="import_result")
    assert len(entries) == 4 and {e.detail["variant"] for e in entries} == {gguf.id}
    (tmp_path / "bad.csv").write_text("build_commit,model_filename\nx,m.gguf\n")
    assert cli.main(["bench", "import", str(tmp_path / "bad.csv")]) == cli.EXIT_BAD_INPUT
    assert "lacks a field every row needs" in capsys.readouterr().err


def test_benchmark_app_report_imports_and_refusals_store_nothing(gguf, tmp_path: Path) -> None:
    from backends.importers import ImportRequest, import_now

    ir_source = import_now(ImportRequest(kind="path", path=str(_tiny_ir(tmp_path / "ir"))))
    ir = variants.get_variant(ir_source.root_variant_id)
    report = tmp_path / "report"
    report.mkdir()  # benchmark_app writes into the folder, and makes none
    subprocess.run([str(BENCHMARK_APP), "-m", str(main_file(ir)), "-d", "CPU", "-t", "1", "-hint", "latency",
                    "-report_type", "no_counters", "-json_stats", "-report_folder", str(report)],
                   capture_output=True, check=True, timeout=300)
    data = (report / "benchmark_report.json").read_bytes()
    [rid] = actions.import_result(local_admin(), "benchmark_report.json", data)
    [r] = results.results_by_id([rid])
    assert r.variant_id == ir.id and r.protocol_id == "imported:benchmark_app"
    assert r.metrics["throughput_per_s"] > 0 and r.fingerprint["reported"]["device"] == "CPU"

    before = _count()
    refused = {
        # another model: an IR's report named against the GGUF, the GGUF's against the IR
        "benchmark_report.json": (data, gguf.id, "reports are read for OpenVINO IR variants"),
        "bench.json": (_llama_bench(main_file(gguf), "json").encode(), ir.id, "reports are read for GGUF variants"),
        # hand-written malformed files
        "empty.json": (b"  \n", None, "is empty"),
        "unknown.txt": (b"hello, world\n", None, "neither a device-run result nor a report this catalog reads"),
        "cut.json": (b'[{"model_filename": "m.gguf", "model_type": "llama 1B Q4_0"}]', None,
                     "lacks a field every row needs"),
        "words.csv": (b"build_commit,model_filename,model_type,model_size,n_prompt,n_gen,avg_ts\n"
                      b"x,m.gguf,llama 1B Q4_0,1,16,0,fast\n", None, "avg_ts is not a number"),
        "table.md": (b"| model | size | params | backend | threads | test | t/s |\n| - | - | - | - | - | - | - |\n"
                     b"| llama 1B Q4_0 | 1 MiB | 1 M | CPU | 2 | warm | 1 \xc2\xb1 0 |\n", gguf.id, "cannot read"),
        "ba.json": (b'{"cmd_options": [], "configuration_setup": {}, "execution_results": {}}', None,
                    "lacks one of its sections"),
        "big.json": (b" " * (21 * 2**20), None, "at most 20 MB"),
        "latin1.csv": (b"\xff\xfe", None, "not UTF-8"),
    }
    for name, (body, variant_id, sentence) in refused.items():
        with pytest.raises(InvalidInputError, match=sentence):
            actions.import_result(local_admin(), name, body, variant_id)
    assert _count() == before


def test_a_report_of_another_model_is_refused(gguf, tmp_path: Path) -> None:
    """The demo's report named against a variant of another precision: refused, nothing stored."""
    from backends.importers import ImportRequest, import_now
    from tests.helpers.models import tiny_gguf

    other = import_now(ImportRequest(kind="path", path=str(tiny_gguf(tmp_path / "other.gguf"))))
    text = _llama_bench(main_file(gguf), "csv")
    before = _count()
    with pytest.raises(InvalidInputError, match="measured a Q4_1 model"):
        actions.import_result(local_admin(), "bench.csv", text.encode(), other.root_variant_id)
    assert _count() == before


def test_a_viewer_cannot_import_a_result(gguf) -> None:
    from catalog import users
    from catalog.access import Actor
    from catalog.errors import PermissionDeniedError

    users.add_user("vera", "viewer", None)
    with pytest.raises(PermissionDeniedError):
        actions.import_result(Actor("vera", "viewer"), "bench.json", b"[]")
