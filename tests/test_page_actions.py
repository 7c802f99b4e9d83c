"""What the pages hand to the service instead of doing themselves: trying a model (a runner
process started for a user), an upload's stage-import-discard, the Convert form's plan (no writes)
and submit with its calibration upload, and the Compare page's choices (bench/compare_view.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from catalog import audit, calibration, config, jobs, uploads
from catalog.access import Actor
from catalog.errors import CatalogError, PermissionDeniedError
from service import actions

VIEWER, EDITOR = Actor("vera", "viewer"), Actor("ed", "editor")
WORDS = " ".join(f"word{i}" for i in range(300)).encode()
QUANTIZE = {"types": ["IQ2_XXS"], "allow_requantize": True, "calibration": "shipped"}


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_trying_a_model_is_an_editors_audited_action(demo_source, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.try_prompt

    started: list[tuple[Any, ...]] = []
    monkeypatch.setattr(bench.try_prompt, "run_in_process",
                        lambda *args: started.append(args) or {"text": " Paris.", "seconds": 0.1, "runtime": "x"})
    vid = demo_source.root_variant_id
    with pytest.raises(PermissionDeniedError, match="trying a model on the server needs the editor role"):
        actions.try_prompt(VIEWER, vid, "The capital of France is")
    assert started == []  # refused before any process starts
    assert [(e.actor, e.action, e.object_id) for e in audit.entries()] == [("vera", "refused", vid)]
    assert actions.try_prompt(EDITOR, vid, "The capital of France is")["text"] == " Paris."
    assert len(started) == 1 and started[0][2] == "The capital of France is"
    row = audit.entries()[0]
    assert (row.actor, row.action, row.object_id) == ("ed", "try_model", vid)


def test_an_upload_is_written_only_for_an_importer_and_removed_when_refused(root: Path) -> None:
    with pytest.raises(PermissionDeniedError, match="importing a model needs the editor role"):
        actions.import_upload(VIEWER, [("model.gguf", b"GGUF" + bytes(64))])
    with pytest.raises(PermissionDeniedError, match="trust_remote_code"):
        actions.import_upload(EDITOR, [("config.json", b"{}")], trust_remote_code=True)
    assert _files_under(config.uploads_dir()) == []  # nothing written before the role checks
    with pytest.raises(CatalogError):
        actions.import_upload(EDITOR, [("config.json", b"not json")])  # refused by the import's checks
    assert _files_under(config.uploads_dir()) == []  # what was staged is gone
    assert jobs.list_jobs() == []
    assert [(e.actor, e.action, e.detail["tried"]) for e in reversed(audit.entries())] == [
        ("vera", "refused", "import_upload"), ("ed", "refused", "import_upload")]  # one row per attempt


def test_the_convert_forms_plan_writes_nothing_and_submit_saves_the_upload(demo_source, root: Path) -> None:
    vid = demo_source.root_variant_id
    upload = ("quotes.txt", WORDS)
    steps, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, QUANTIZE, calibration_upload=upload)
    assert steps and not [p for p in problems if p.level == "error"]
    assert _files_under(config.uploads_dir()) == [] and _files_under(root / calibration.FOLDER) == []
    # a viewer's upload is not even staged: the plan uses the shipped text
    viewer_steps, _ = actions.plan_conversion(VIEWER, "llamacpp.quantize", vid, QUANTIZE, calibration_upload=upload)
    assert [s.target_variant_id for s in viewer_steps] != [s.target_variant_id for s in steps]
    with pytest.raises(PermissionDeniedError):
        actions.convert(VIEWER, "llamacpp.quantize", vid, QUANTIZE, calibration_upload=upload)
    assert _files_under(config.uploads_dir()) == []
    subs = actions.convert(EDITOR, "llamacpp.quantize", vid, QUANTIZE, calibration_upload=upload)
    # submit makes what the plan showed, from the upload saved in the editor's own folder
    assert sorted(s.job.target_variant_id for s in subs if s.job) == sorted(s.target_variant_id for s in steps)
    digest = hashlib.sha256(WORDS).hexdigest()[:16]
    assert [p.name for p in _files_under(config.uploads_dir())] == [f"calibration-{digest}.txt"]
    assert _files_under(uploads.owner_dir("ed")) != []
    assert {(e.actor, e.action) for e in audit.entries()} == {("ed", "convert"), ("vera", "refused")}


def _warnings(problems: list[Any]) -> list[str]:
    return [p.message for p in problems if p.level == "warning" and "calibration text" in p.message]


def test_an_uploaded_calibration_text_that_imatrix_auto_would_not_use_is_said_so(demo_source) -> None:
    vid = demo_source.root_variant_id
    upload = ("quotes.txt", WORDS)
    q4 = {"types": ["Q4_K_M"], "allow_requantize": True, "calibration": "shipped"}  # imatrix auto
    steps, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, q4, calibration_upload=upload)
    assert [s.options["calibration"] for s in steps] == ["shipped"]  # Q4_K_M needs no matrix: none is made
    assert _warnings(problems) == [
        "The calibration text is not used: with imatrix auto an importance matrix is made only for types llama.cpp "
        "refuses without one, which Q4_K_M is not; set imatrix to always to quantize every type with a matrix "
        "made from it."]
    # the option the warning names uses the upload: a matrix from it, and Q4_K_M quantized with it
    steps, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, {**q4, "imatrix": "always"},
                                              calibration_upload=upload)
    assert [s.conversion.key for s in steps] == ["llamacpp.imatrix", "llamacpp.quantize"]
    digest = hashlib.sha256(WORDS).hexdigest()[:16]
    assert all(Path(s.options["calibration"]).name == f"{digest}.txt" for s in steps) and not _warnings(problems)
    mixed = {**q4, "types": ["IQ2_XXS", "Q4_K_M"]}
    _, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, mixed, calibration_upload=upload)
    assert _warnings(problems) == [
        "The calibration text is used only for IQ2_XXS: with imatrix auto, Q4_K_M is quantized without an importance "
        "matrix; set imatrix to always to quantize every type with a matrix made from it."]
    _, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, {**q4, "imatrix": "never"},
                                          calibration_upload=upload)
    assert _warnings(problems) == [
        "The calibration text is not used: with imatrix never no importance matrix is made; set imatrix to always "
        "to quantize every type with a matrix made from it."]
    _, problems = actions.plan_conversion(EDITOR, "llamacpp.quantize", vid, q4)  # no upload: nothing to say
    assert not _warnings(problems)


def test_the_compare_pages_choices_live_outside_the_page(demo_source) -> None:
    from bench.compare_view import clicked_link, default_baseline, variant_labels
    from catalog.comparisons import Comparison

    assert clicked_link("/model?id=s-1&variant=v-2") == ("model", {"id": "s-1", "variant": "v-2"})
    assert clicked_link(None) is None and clicked_link("") is None
    vid = demo_source.root_variant_id
    assert variant_labels([vid, "v-gone"])["v-gone"] == "v-gone"

    class Result:
        def __init__(self, rid: str, variant_id: str) -> None:
            self.id, self.variant_id = rid, variant_id

    # the demo has no Hugging Face form: the first result is the baseline
    assert default_baseline([Result("r-1", vid), Result("r-2", "v-x")], demo_source.id) == "r-1"
    mine = Comparison(id="c-1", name="n", created_by="ed", created_at=None, updated_at=None, spec={})
    assert actions.may_update_comparison(EDITOR, mine) and not actions.may_update_comparison(VIEWER, mine)
    assert actions.may_delete_comparison(Actor("ada", "admin"), mine) and not actions.may_delete_comparison(
        Actor("bo", "editor"), mine)
