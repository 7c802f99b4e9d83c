"""Each page driven headlessly with Streamlit's AppTest, asserting on what a user sees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog import jobs, sources, variants

TIMEOUT = 60
LONG_AGO_NS = 1_000_000_000
REPO = Path(__file__).resolve().parent.parent


def page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.error] + [e.value for e in at.success] + [t.value for t in at.title]
    parts += [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def test_catalog_page_offers_the_demo_on_an_empty_catalog(root: Path, demo_gguf: Path) -> None:
    at = page("browse")
    assert not at.exception
    assert "catalog is empty" in texts(at)
    at.button(key="import_demo").click().run()
    assert "Queued job" in texts(at)
    assert [j.kind for j in jobs.list_jobs()] == ["import"]


def test_catalog_page_lists_and_filters(demo_source) -> None:
    at = page("browse")
    assert not at.exception
    assert "SmolLM2-135M-Instruct" in texts(at)
    at.text_input(key="search").input("no-such-model").run()
    assert "SmolLM2" not in texts(at) and "0 source model(s)" in texts(at)


def test_model_page_shows_metadata_files_and_lineage(demo_source) -> None:
    at = page("model", id=demo_source.id)
    assert not at.exception
    assert at.title[0].value == "SmolLM2-135M-Instruct"
    facts = next(m.value for m in at.markdown if m.value.startswith("**Architecture**"))
    assert "**Architecture** `llama`" in facts and "**Context** `8,192`" in facts  # whole, never "text-gene…"
    assert "**Parameters** `134.5M`" in facts and "**Task** `text-generation`" in facts
    files = at.dataframe[0].value
    assert list(files["file"]) == ["SmolLM2-135M-Instruct.Q4_1.gguf"]


def test_model_page_saves_notes_and_deletes_with_a_tombstone(demo_source) -> None:
    at = page("model", id=demo_source.id)
    at.text_area(key=f"notes_text_{demo_source.id}").input("good for demos")
    at.text_input(key=f"tags_text_{demo_source.id}").input("demo, small")
    [save] = [b for b in at.button if b.label == "Save"]
    save.click().run()
    src = sources.get_source(demo_source.id)
    assert src.notes == "good for demos" and src.tags == ["demo", "small"]
    at.checkbox(key="confirm_delete").check().run()
    [delete] = [b for b in at.button if b.label == "Delete variant files"]
    delete.click().run()
    assert variants.get_variant(demo_source.root_variant_id).state == "deleted"


def test_saving_the_notes_form_keeps_tags_another_user_saved_meanwhile(demo_source) -> None:
    """Found by the load test: the form replaced the tags with what it showed when drawn, so a
    tag saved by another browser or an import in between was lost."""
    sources.update_source(demo_source.id, tags=["old", "shared"], notes="first")
    at = page("model", id=demo_source.id)
    sources.update_source(demo_source.id, tags=["old", "shared", "from-b"])  # another user, after the draw
    at.text_input(key=f"tags_text_{demo_source.id}").input("shared, from-a")  # this user drops "old"
    [save] = [b for b in at.button if b.label == "Save"]
    save.click().run()
    src = sources.get_source(demo_source.id)
    assert src.tags == ["from-a", "from-b", "shared"] and src.notes == "first"
    assert "from-b" in texts(at)


def test_rendering_the_model_page_again_writes_nothing_to_the_catalog(demo_source, root: Path) -> None:
    """The page checks each variant's files on every render; it records a state only when the
    files changed since, so a rerun (or another visitor) that finds them as recorded writes nothing."""
    from catalog import config

    variant = variants.get_variant(demo_source.root_variant_id)
    (variants.variant_path(variant) / variant.files[0].relpath).unlink()  # the file vanishes from disk
    at = page("model", id=demo_source.id)
    assert not at.exception
    assert variants.get_variant(variant.id).state == "files_missing"  # the render saw it and recorded it
    catalog_file = config.db_path()
    os.utime(catalog_file, ns=(LONG_AGO_NS, LONG_AGO_NS))
    at.run()
    again = page("model", id=demo_source.id)
    assert not at.exception and not again.exception
    assert "files missing" in again.selectbox(key="variant_pick").format_func(variant.id)
    assert catalog_file.stat().st_mtime_ns == LONG_AGO_NS, "a rerun that found nothing changed wrote the catalog"


def test_tag_merge_applies_only_the_users_changes() -> None:
    assert sources.merge_tags(["a", "b", "c"], shown=["a", "b"], wanted=["b", "d"]) == ["b", "c", "d"]
    assert sources.merge_tags([], shown=["a"], wanted=["a"]) == []


def test_model_page_without_id_and_with_a_bad_id(root: Path) -> None:
    assert "Pick a model" in texts(page("model"))
    at = page("model", id="s-nope")
    assert not at.exception and "No source model" in texts(at)


def test_import_page_refuses_bad_paths_with_a_sentence(root: Path) -> None:
    at = page("import_model")
    assert not at.exception
    at.text_input(key="imp_path").input("/etc/hostname").run()
    at.button(key="path_btn").click().run()
    assert "outside the folders imports may read" in texts(at)
    assert jobs.list_jobs() == []


def test_upload_widgets_state_the_team_pages_limit(root: Path) -> None:
    """Issue 25: the uploader said "1GB per file" while the Team page said 512 MB (uploads) and
    64 MB (calibration): each widget now states, and enforces, its setting."""
    from dataclasses import replace

    from catalog import config

    config.save_settings(replace(config.load_settings(), max_upload_mb=300, max_calibration_mb=7))
    [uploader] = page("import_model").get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 300 and "Up to 300 MB in all" in uploader.proto.help


def test_the_nncf_form_follows_the_mode_with_its_group_size(root: Path, tmp_path: Path) -> None:
    """Issue 25: choosing INT8_ASYM kept the 4-bit modes' group size 64 in the form, and the plan
    refused it ("set ratio to 1 and group size to -1") instead of the form adjusting."""
    from backends.importers import ImportRequest, submit_import
    from tests.helpers.models import tiny_hf_folder
    from worker.runner import run_to_completion

    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert run_to_completion(job.id).state == "succeeded"
    at = page("convert", conversion="openvino.compress_weights")
    assert not at.exception
    prefix = "openvino.compress_weights"
    assert at.selectbox(key=f"{prefix}_group_size_64").value == "64"  # the INT4 default
    at.selectbox(key=f"{prefix}_mode").select("INT8_ASYM").run()
    assert at.selectbox(key=f"{prefix}_group_size_-1").value == "-1"
    assert "group size to -1" not in texts(at)


def test_jobs_page_shows_failures_and_retry(root: Path, tmp_path: Path) -> None:
    from backends.importers import ImportRequest, submit_import
    from tests.helpers.models import tiny_hf_folder
    from worker.runner import run_to_completion

    folder = tiny_hf_folder(tmp_path / "tiny")
    job = submit_import(ImportRequest(kind="path", path=str(folder))).job
    (folder / "config.json").unlink()
    run_to_completion(job.id)
    at = page("jobs")
    assert not at.exception
    assert "no config.json" in texts(at)
    at.button(key=f"retry_{job.id}").click().run()
    assert jobs.get_job(job.id).state == "queued"


@pytest.mark.parametrize("name", ["storage", "convert", "benchmarks"])
def test_other_pages_render(demo_source, name: str) -> None:
    at = page(name)
    assert not at.exception
