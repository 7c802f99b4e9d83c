"""Refusals that say what to do, before anything is made (the second audit's N6, N7, N8 and
N10 to N13): a GGUF header no file could hold and an IR with no model in it refused in pre-flight;
a converter's C++ check text and a read-only data root turned into sentences; a comparison of
results that do not exist refused; a role outside the three refused in words; refused attempts
audited; the CLI's --as, --json, --check and a closed pipe; HQQ's own default; a kill during
publish named as such. Tiny files and in-process calls: these are mechanics."""

from __future__ import annotations

import errno
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from backends.importers import ImportRequest, preflight
from catalog import audit, config, jobs, uploads
from catalog.access import Actor
from catalog.errors import InvalidInputError, PermissionDeniedError
from service import actions
from tests.helpers.models import tiny_gguf

ADMIN, EDITOR = Actor("ada", "admin"), Actor("ed", "editor")


def _one_sentence(message: str) -> None:
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message
    assert "Error:" not in message and "Check '" not in message, message


def _nothing_made(root: Path) -> None:
    assert jobs.list_jobs() == [] and audit.entries() == []
    assert not [p for p in (root / "jobs").rglob("*") if p.is_file()]  # no job folder, no log


# ------------------------------------------------------------------------------ N6: GGUF header


@pytest.mark.parametrize("damage", ["tensor_count", "key_count", "alignment"])
def test_a_gguf_header_no_file_could_hold_is_refused_before_a_job(root: Path, tmp_path: Path, damage: str) -> None:
    path = tiny_gguf(tmp_path / "model.gguf")
    raw = bytearray(path.read_bytes())
    if damage == "tensor_count":  # header: magic, version (u32), tensor count (u64), key count (u64)
        struct.pack_into("<Q", raw, 8, 2**60)
    elif damage == "key_count":
        struct.pack_into("<Q", raw, 16, 2**40)
    else:  # an alignment of 0 would divide by zero where the data section starts
        path = tmp_path / "aligned.gguf"
        import gguf
        import numpy as np

        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_uint32("general.alignment", 0)
        writer.add_tensor("probe.weight", np.zeros((4, 8), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidInputError) as refused:
        actions.import_model(ADMIN, ImportRequest(kind="path", path=str(path)))
    message = str(refused.value)
    _one_sentence(message)
    assert "truncated or corrupt: its " in message and "download or copy it again" in message
    if damage == "tensor_count":
        assert f"declares {2**60:,} tensors" in message
    _nothing_made(root)


def test_a_cut_gguf_is_refused_in_pre_flight_with_its_figures(root: Path, tmp_path: Path) -> None:
    path = tiny_gguf(tmp_path / "model.gguf")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 64])  # the header is whole; the tensor's data is cut
    with pytest.raises(InvalidInputError, match=r"truncated \(\d+ of \d+ bytes present\)") as refused:
        preflight(ImportRequest(kind="path", path=str(path)))
    _one_sentence(str(refused.value))
    path.write_bytes(whole[:100])  # cut inside the header's strings: no type name ("error") in the sentence
    with pytest.raises(InvalidInputError, match=r"\(100 bytes\): it is truncated or corrupt; download or copy") as cut:
        preflight(ImportRequest(kind="path", path=str(path)))
    _one_sentence(str(cut.value))
    assert ": error" not in str(cut.value)
    path.write_bytes(whole[:40])  # too short for the entries its header declares
    with pytest.raises(InvalidInputError, match="more than its 40 bytes can hold"):
        preflight(ImportRequest(kind="path", path=str(path)))


# ------------------------------------------------------------------------------ N7: IR recognition


def _ir(folder: Path, *, comment: str = "", layers: bool = True, with_bin: bool = True) -> Path:
    """A hand-written IR: a Parameter, a ReLU and a Result (no weights, as OpenVINO writes one)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = ('<layers><layer id="0" name="x" type="Parameter" version="opset1"><data shape="1,4" element_type="f32"/>'
            '<output><port id="0" precision="FP32"><dim>1</dim><dim>4</dim></port></output></layer>'
            '<layer id="1" name="r" type="ReLU" version="opset1"><input><port id="0"><dim>1</dim><dim>4</dim></port>'
            '</input><output><port id="1" precision="FP32"><dim>1</dim><dim>4</dim></port></output></layer>'
            '<layer id="2" name="out" type="Result" version="opset1"><input><port id="0"><dim>1</dim><dim>4</dim>'
            '</port></input></layer></layers><edges><edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>'
            '<edge from-layer="1" from-port="1" to-layer="2" to-port="0"/></edges>') if layers else ""
    xml = folder / "model.xml"
    xml.write_text(f'<?xml version="1.0"?>\n{comment}<net name="relu" version="11">{body}</net>\n')
    if with_bin:
        (folder / "model.bin").write_bytes(b"")
    return xml


def test_an_ir_with_no_model_in_it_is_refused_and_a_late_net_is_recognised(root: Path, tmp_path: Path) -> None:
    from backends.openvino.import_check import recognise

    empty = _ir(tmp_path / "empty", layers=False, with_bin=False)
    with pytest.raises(InvalidInputError, match="no layers, so there is no model in it") as refused:
        preflight(ImportRequest(kind="path", path=str(empty.parent)))
    _one_sentence(str(refused.value))
    no_bin = _ir(tmp_path / "no-bin", with_bin=False)
    with pytest.raises(InvalidInputError, match="has no model.bin beside it"):
        preflight(ImportRequest(kind="path", path=str(no_bin.parent)))

    licence = "<!-- " + "Licensed under the Apache License, Version 2.0. " * 40 + "-->\n"
    late = _ir(tmp_path / "late", comment=licence)
    assert late.read_bytes().index(b"<net") > 1500
    assert recognise(late.parent) and recognise(late)
    assert preflight(ImportRequest(kind="path", path=str(late.parent)))["path"] == str(late.parent)
    # A <net> inside a comment is not a root element, and a FIFO is never opened to look.
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "model.xml").write_text('<?xml version="1.0"?>\n<!-- <net> --><graph/>\n')
    assert not recognise(tmp_path / "fake")


# ------------------------------------------------------------------------------ N8: sentences


def test_a_converters_check_text_becomes_a_sentence_and_custom_ops_are_refused_in_pre_flight(tmp_path: Path) -> None:
    import onnx
    import openvino as ov
    from onnx import TensorProto, helper

    from backends.openvino.encoder_classifier import conversion_failure, validate_convert_onnx
    from catalog.records import Variant

    x = helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("MyCustomOp", ["input_ids"], ["y"], domain="com.example")], "g", [x],
                              [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    with pytest.raises(Exception) as failed:  # noqa: PT011 - OpConversionFailure derives from Exception alone
        ov.convert_model(str(tmp_path / "custom.onnx"))
    assert "Check 'false' failed at src/" in str(failed.value)
    sentence = conversion_failure("custom.onnx", failed.value)
    _one_sentence(sentence)
    assert "no conversion for the operator com.example.MyCustomOp" in sentence and "ONNX Runtime" in sentence

    variant = Variant(id="v-x", source_id="s-x", parent_id=None, format="onnx", precision="float", backend="import",
                      conversion="path", options={}, toolkit_versions={}, state="available", created_at=None,
                      job_id=None, size_bytes=100, metadata={"task": "feature-extraction",
                                                              "opset": {"ai.onnx": 17, "com.example": 1}},
                      deleted_at=None)
    [problem] = validate_convert_onnx(variant, {"precision": "fp32"})
    assert problem.level == "error" and "custom domain com.example" in problem.message
    variant.metadata["opset"] = {"ai.onnx": 17, "com.microsoft": 1}
    assert validate_convert_onnx(variant, {"precision": "fp32"}) == []


def test_a_read_only_data_root_and_an_unknown_error_read_as_sentences() -> None:
    from worker.advice import explain

    read_only = explain(OSError(errno.EROFS, "Read-only file system", "/data/artifacts/s-1"))
    _one_sentence(read_only)
    assert read_only.startswith("/data/artifacts/s-1 is on a read-only file system") and "Errno" not in read_only
    assert "mount the data root read-write, then retry" in read_only

    class NativeFailure(Exception):
        pass

    unknown = explain(NativeFailure("Check 'x' failed at src/core/shape.cpp:12:\nShape of node Foo is not static\n"))
    _one_sentence(unknown)
    assert "(Shape of node Foo is not static)" in unknown and "report it with the job log" in unknown


# ------------------------------------------------------------------------------ N10: comparisons, roles, audit


def test_a_comparison_of_results_that_do_not_exist_is_refused(root: Path) -> None:
    from catalog import comparisons, db, results

    with db.connect() as conn:
        rid = results.add_result(conn, variant_id="v-1", source_id="s-1", job_id=None, protocol_id="p", profile="quick",
                                 runtime="x", fingerprint_id="f", fingerprint={}, metrics={}, raw={},
                                 toolkit_versions={}, flags=[])
    with pytest.raises(InvalidInputError, match="no benchmark result r-gone and 1 more") as refused:
        actions.save_comparison(EDITOR, "ghosts",
                                {"result_ids": [rid, "r-gone", "r-gone-too"], "baseline_result_id": rid})
    _one_sentence(str(refused.value))
    with pytest.raises(InvalidInputError, match="no benchmark result r-base"):
        actions.save_comparison(EDITOR, "bad baseline", {"result_ids": [rid], "baseline_result_id": "r-base"})
    assert comparisons.list_comparisons() == [] and audit.entries() == []
    saved = actions.save_comparison(EDITOR, "real", {"result_ids": [rid], "baseline_result_id": rid})
    with pytest.raises(InvalidInputError, match="no benchmark result r-gone"):
        actions.update_comparison(EDITOR, saved.id, ["r-gone"])
    assert comparisons.get_comparison(saved.id).result_ids == [rid]


def test_a_role_outside_the_three_is_refused_in_words_and_every_refusal_is_audited(demo_source, root: Path) -> None:
    from catalog import db

    odd = Actor("mallory", "superuser")
    assert not odd.can("view") and not odd.can("delete")
    with pytest.raises(PermissionDeniedError, match="role 'superuser', which this catalog does not know") as refused:
        actions.delete_variant(odd, demo_source.root_variant_id)
    _one_sentence(str(refused.value))
    with db.connect() as conn:  # a row edited by hand holds a role the catalog never wrote
        conn.execute("INSERT INTO users (name, role, created_at) VALUES ('hand', 'owner', now())")
    with pytest.raises(PermissionDeniedError, match="role 'owner'"):
        actions.import_model(Actor("hand", "admin"), ImportRequest(kind="demo"))  # the catalog's row decides
    rows = list(reversed(audit.entries()))
    assert [(e.actor, e.action, e.object_id, e.detail["tried"]) for e in rows] == [
        ("mallory", "refused", demo_source.root_variant_id, "delete_variant"),
        ("hand", "refused", "smollm2", "import_model")]
    assert rows[0].detail["role"] == "superuser" and "does not know" in rows[0].detail["reason"]


def test_refused_result_imports_and_device_bundles_are_audited(root: Path, tmp_path: Path) -> None:
    from catalog import results

    viewer, odd = Actor("vera", "viewer"), Actor("mallory", "superuser")
    with pytest.raises(PermissionDeniedError, match="needs the editor role"):
        actions.import_result(viewer, "result.json", b"{}", "v-measured")
    with pytest.raises(PermissionDeniedError, match="role 'superuser'"):
        actions.device_bundle(odd, ["v-a", "v-b"], tmp_path / "bundle.zip")
    assert not (tmp_path / "bundle.zip").exists() and results.results_for_variant("v-measured") == []
    rows = list(reversed(audit.entries()))
    assert [(e.actor, e.action, e.object_id, e.detail["tried"], e.detail["role"]) for e in rows] == [
        ("vera", "refused", "v-measured", "import_result", "viewer"),
        ("mallory", "refused", "v-a,v-b", "device_bundle", "superuser")]
    assert "needs the editor role" in rows[0].detail["reason"]


def test_an_example_imports_audit_row_names_the_example(root: Path) -> None:
    actions.import_model(EDITOR, ImportRequest(kind="demo", example="digits-cnn"))  # queued, never run here
    [row] = audit.entries()
    assert row.action == "import" and row.detail["example"] == "digits-cnn" and row.detail["kind"] == "demo"


# ------------------------------------------------------------------------------ N11, N12: the CLI


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", "--data-root", str(root), *args], cwd=config.PROJECT_DIR,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_closed_pipe_ends_the_cli_quietly(root: Path) -> None:
    proc = subprocess.Popen([sys.executable, "cli.py", "--data-root", str(root), "list"], cwd=config.PROJECT_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, as `| head` is after its lines
    stderr = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 141 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_check_refuses_what_submit_refuses_and_queue_prints_json(demo_source, root: Path) -> None:
    vid = demo_source.root_variant_id
    theirs = uploads.owner_dir("olga") / "calibration.txt"
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_text("olga's private text\n" * 20)
    args = ["convert", "llamacpp.quantize", vid, "--types", "Q8_0", "--allow-requantize", "--calibration", str(theirs)]
    before = len(jobs.list_jobs())
    checked = cli(root, *args, "--check")
    assert checked.returncode == 5 and "another user's upload" in checked.stderr, checked.stderr
    submitted = cli(root, *args, "--queue")
    assert submitted.returncode == 5 and "another user's upload" in submitted.stderr
    with pytest.raises(PermissionDeniedError, match="another user's upload"):  # the page's submit, alike
        actions.convert(EDITOR, "llamacpp.quantize", vid, {"types": ["Q8_0"], "allow_requantize": True,
                                                            "calibration": str(theirs)})
    # every refused attempt on record: the CLI checks before it submits, so both of its are checks
    assert [(e.actor, e.detail["tried"]) for e in reversed(audit.entries())] == [
        (config.local_user(), "check_conversion"), (config.local_user(), "check_conversion"), ("ed", "convert")]
    assert len(jobs.list_jobs()) == before  # nothing was queued

    plan = cli(root, "--json", "convert", "llamacpp.quantize", vid, "--types", "Q8_0", "--allow-requantize", "--check")
    assert plan.returncode == 0, plan.stderr
    [step] = json.loads(plan.stdout)
    queued = cli(root, "--json", "convert", "llamacpp.quantize", vid, "--types", "Q8_0", "--allow-requantize",
                 "--queue")
    assert queued.returncode == 0, queued.stderr
    [job] = json.loads(queued.stdout)
    assert jobs.get_job(job["job_id"]).target_variant_id == step["variant_id"] and job["message"]


def test_hqq_defaults_to_asymmetric_blocks() -> None:
    from backends.registry import get_conversion

    conv = get_conversion("onnxrt.quantize_int4")
    assert conv.normalize({"algorithm": "HQQ"})["symmetric"] is False
    assert conv.normalize({"algorithm": "RTN"})["symmetric"] is True  # as before: RTN's variant ids are unchanged
    assert conv.normalize({})["symmetric"] is True
    assert conv.normalize({"algorithm": "HQQ", "symmetric": True})["symmetric"] is True  # given: kept (and refused)
    assert conv.normalize({"algorithm": "HQQ", "symmetric": False})["symmetric"] is False


def _int4_form() -> None:
    """The Convert page's option form for INT4, alone (an AppTest script: its imports are its own)."""
    import streamlit as st

    from backends.registry import get_conversion
    from ui.forms import conversion_form

    st.session_state["raw"] = conversion_form(get_conversion("onnxrt.quantize_int4"))


def test_the_convert_form_shows_the_default_the_declaration_computes() -> None:
    from streamlit.testing.v1 import AppTest

    from backends.registry import get_conversion

    conv = get_conversion("onnxrt.quantize_int4")
    at = AppTest.from_function(_int4_form, default_timeout=60).run()
    assert not at.exception
    [box] = at.checkbox
    assert box.label == "symmetric" and box.value is conv.normalize({"algorithm": "RTN"})["symmetric"] is True
    at.selectbox[0].select("HQQ").run()  # the algorithm is the first option
    [box] = at.checkbox
    assert box.value is conv.normalize({"algorithm": "HQQ"})["symmetric"] is False
    raw = at.session_state["raw"]
    assert raw["algorithm"] == "HQQ" and raw["symmetric"] is False  # what the form submits: not refused
    box.check().run()  # a choice the user makes is kept while the algorithm stays
    assert at.checkbox[0].value is True and at.session_state["raw"]["symmetric"] is True
    at.selectbox[0].select("RTN").run()
    assert at.checkbox[0].value is True


# ------------------------------------------------------------------------------ N13: a kill during publish


def test_a_job_stopped_while_publishing_is_said_to_be_recording(root: Path, tmp_path: Path) -> None:
    from catalog import jobfiles
    from catalog.errors import ConflictError
    from worker.context import PUBLISH_STEP, JobContext
    from worker.crash import CrashReport

    sub = jobs.submit("import", {"kind": "path", "path": str(tmp_path)}, title="Import x")
    ctx = JobContext(sub.job)
    ctx.progress(0.85, "reading metadata")
    staged = ctx.work_dir / "files"
    staged.mkdir()
    with pytest.raises(ConflictError):  # still queued: publish refuses, after naming its step
        ctx.publish(staged, lambda conn: pytest.fail("nothing is recorded for a job that is not running"))
    step = jobfiles.read_progress(sub.job.id)["message"]
    assert step == PUBLISH_STEP
    killed = CrashReport(signal="SIGKILL", number=9, step=step, who="the job process", out_of_memory=False,
                         log_tail="")
    assert killed.sentence.startswith("Stopped while recording the output in the catalog: the job process was killed")
