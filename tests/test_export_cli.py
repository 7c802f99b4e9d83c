"""Export, storage cleanup and the CLI (exit codes, --json)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backends import registry
from backends.export import export_variant
from catalog import config, storage, variants


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", "--data-root", str(root), *args], cwd=config.PROJECT_DIR,
                          capture_output=True, text=True, timeout=300, check=False)


def test_export_folder_and_zip_are_complete(demo_source, tmp_path: Path) -> None:
    vid = demo_source.root_variant_id
    folder = export_variant(vid, tmp_path / "out")
    manifest = json.loads((folder / "manifest.json").read_text())
    [entry] = manifest["files"]
    assert hashlib.sha256((folder / entry["relpath"]).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["variant"]["id"] == vid and manifest["source"]["license"] == "apache-2.0"
    assert "llama_cpp" in (folder / "RUN.md").read_text()
    zpath = export_variant(vid, tmp_path / "zips", as_zip=True)
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
    assert any(n.endswith("manifest.json") for n in names) and any(n.endswith(".gguf") for n in names)
    assert not list((tmp_path / "zips").glob("*.partial"))
    root = variants.get_variant(vid)
    assert zpath.name == f"{demo_source.name}-gguf-{root.precision}-{vid}.zip".replace(" ", "_")


def test_export_names_say_the_format(demo_source) -> None:
    """An OpenVINO INT4 and a GenAI INT4 of one source once had the same zip name ("...-INT4-v-...")."""
    from dataclasses import replace

    from catalog.bundle import export_name

    root = variants.get_variant(demo_source.root_variant_id)
    ov, genai = (replace(root, format=f, precision="INT4") for f in ("openvino", "genai"))
    assert export_name("Smol LM", ov) == f"Smol_LM-openvino-INT4-{root.id}"
    assert export_name("Smol LM", genai) == f"Smol_LM-genai-INT4-{root.id}"
    assert export_name("x", replace(root, format="hf", precision="hf")) == f"x-hf-{root.id}"


def test_an_export_with_a_model_card_agrees_with_its_own_manifest(root: Path, tmp_path: Path) -> None:
    """Before: a variant with a README listed the original card's hash under README.md, while the
    export's README.md is the generated card (the original is README.original.md), so the export
    failed its own check. Now the manifest lists what the export holds, and the export verifies
    it: the folder, the zip's contents and the re-import of the zip all agree."""
    from backends.importers import ImportRequest, import_now
    from catalog.bundle import verify_export
    from catalog.errors import ConflictError
    from tests.helpers.models import tiny_hf_folder

    original = tiny_hf_folder(tmp_path / "tiny")
    source = import_now(ImportRequest(kind="path", path=str(original)))
    folder = export_variant(source.root_variant_id, tmp_path / "out")
    verify_export(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "README.original.md" in {f["relpath"] for f in manifest["files"]}
    assert {g["relpath"] for g in manifest["generated"]} == {"README.md", "RUN.md"}
    assert (folder / "README.original.md").read_text() == (original / "README.md").read_text()
    zpath = export_variant(source.root_variant_id, tmp_path / "zips", as_zip=True)
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "unzipped")
    verify_export(next((tmp_path / "unzipped").iterdir()))
    (folder / "RUN.md").write_text("tampered")
    with pytest.raises(ConflictError, match="RUN.md in the export does not match its manifest"):
        verify_export(folder)
    (folder / "stray.txt").write_text("x")
    (folder / "RUN.md").unlink()
    with pytest.raises(ConflictError, match="lacks RUN.md"):
        verify_export(folder)
    # the unzipped export imports back as the model it came from (manifest, RUN.md and card undone)
    assert import_now(ImportRequest(kind="path", path=str(next((tmp_path / "unzipped").iterdir())))).id == source.id


def test_export_refuses_a_damaged_file_and_leaves_nothing(demo_source, tmp_path: Path) -> None:
    variant = variants.get_variant(demo_source.root_variant_id)
    stored = registry.main_file(variant)
    stored.unlink()
    stored.write_bytes(b"GGUF damaged")  # damage the stored copy
    out = tmp_path / "out"
    out.mkdir()
    try:
        export_variant(variant.id, out)
        raise AssertionError("export should refuse")
    except Exception as exc:  # noqa: BLE001 - checking the message below
        assert "no longer matches its recorded sha256" in str(exc)
    assert list(out.iterdir()) == []


def test_storage_finds_and_cleans_orphans(demo_source, root: Path) -> None:
    stray = config.artifacts_dir() / demo_source.id / "v-stray"
    stray.mkdir()
    (stray / "junk.gguf").write_bytes(b"x" * 1000)
    found = storage.find_orphans()
    assert [o.path for o in found] == [stray]
    assert storage.clean_orphans() == 1000
    assert not stray.exists()
    assert storage.disk_by_source()[0]["bytes"] == variants.get_variant(demo_source.root_variant_id).size_bytes


def test_cli_round_trip_with_exit_codes(root: Path, demo_gguf: Path, tmp_path: Path) -> None:
    done = cli(root, "--json", "import", "--demo")
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli(root, "list", "--json").stdout)
    [src] = listed
    shown = json.loads(cli(root, "show", src["id"], "--json").stdout)
    vid = shown["variants"][0]["id"]
    assert cli(root, "export", vid, str(tmp_path / "x")).returncode == 0
    assert cli(root, "show", "s-missing").returncode == 3
    assert cli(root, "import", "/etc/hostname").returncode == 2
    bad = cli(root, "convert", "llamacpp.quantize", vid, "--types", "Q4_K_M")
    assert bad.returncode == 2 and "already quantized" in bad.stderr
    assert cli(root, "delete", vid).returncode == 0
    assert json.loads(cli(root, "show", vid, "--json").stdout)["state"] == "deleted"
    jobs = json.loads(cli(root, "jobs", "list", "--json").stdout)
    assert [j["state"] for j in jobs] == ["succeeded"]


def test_the_exported_model_card_is_hub_metadata(demo_source, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    folder = export_variant(demo_source.root_variant_id, tmp_path / "out")
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.base_model_relation == "quantized" and card.data.library_name == "gguf"
    assert card.data.license == "apache-2.0" and "Q4_1" in card.data.tags
    assert "## Toolkit versions" in card.text and "Q4_1 variant of [HuggingFaceTB/SmolLM2-135M-Instruct]" in card.text
    assert "Not benchmarked yet" in card.text  # no result of this variant in this fresh catalog
