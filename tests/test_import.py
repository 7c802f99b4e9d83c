"""Import of each kind, and bad input: one sentence, no row, no file left behind."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import struct
from pathlib import Path

import pytest

from backends.export import export_variant
from backends.importers import ImportRequest, cached_models, import_now, submit_import
from catalog import config, jobs, sources, variants
from catalog.errors import InvalidInputError
from catalog.files import copy_file, sha256_file
from tests.helpers.models import tiny_hf_folder


def assert_clean(root: Path) -> None:
    """No source, no variant file, no job: a refused import leaves nothing behind."""
    assert_no_source_and_no_file(root)
    assert jobs.list_jobs() == []


def assert_no_source_and_no_file(root: Path) -> None:
    assert sources.count_sources() == 0
    assert not [p for p in (root / "artifacts").rglob("*") if p.is_file()]


def test_demo_import_reads_gguf_metadata(demo_source) -> None:
    src = demo_source
    assert src.architecture == "llama" and src.task == "text-generation"
    assert src.context_length == 8192 and 130e6 < src.param_count < 140e6
    assert src.license == "apache-2.0"
    root_variant = variants.get_variant(src.root_variant_id)
    assert root_variant.format == "gguf" and root_variant.precision == "Q4_1"
    assert root_variant.metadata["has_chat_template"] is True
    assert root_variant.metadata["tokenizer_model"] == "gpt2"
    [f] = root_variant.files
    path = variants.variant_path(root_variant) / f.relpath
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256


def test_same_bytes_twice_give_the_same_source(demo_source, tmp_path: Path, demo_gguf: Path) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(demo_gguf.read_bytes())
    again = import_now(ImportRequest(kind="path", path=str(copy), name="another name"))
    assert again.id == demo_source.id
    assert sources.count_sources() == 1


def test_server_folder_import_copies(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    src = import_now(ImportRequest(kind="path", path=str(folder), tags=["test"], added_by="ana"))
    assert src.architecture == "LlamaForCausalLM" and src.param_count == 2 * 32 * 16
    assert src.license == "mit" and src.tags == ["test"] and src.added_by == "ana"
    stored = variants.variant_path(variants.get_variant(src.root_variant_id)) / "model.safetensors"
    assert os.stat(stored).st_ino != os.stat(folder / "model.safetensors").st_ino


def test_overwriting_the_original_never_changes_the_stored_copy(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    src = import_now(ImportRequest(kind="path", path=str(folder)))
    variant = variants.get_variant(src.root_variant_id)
    [weights] = [f for f in variant.files if f.relpath == "model.safetensors"]
    with open(folder / "model.safetensors", "r+b") as fh:  # in place, as `cp other.safetensors` onto it does
        fh.seek(-64, os.SEEK_END)
        fh.write(os.urandom(64))
    assert sha256_file(variants.variant_path(variant) / "model.safetensors") == weights.sha256
    assert export_variant(variant.id, tmp_path / "out").is_dir()  # not "the stored copy is damaged"


def test_copy_keeps_sparse_holes_and_names_its_method(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as fh:
        fh.write(b"head")
        fh.seek(64 * 2**20)
        fh.write(b"tail")
    method = copy_file(sparse, tmp_path / "copy" / "sparse.bin")
    copy = tmp_path / "copy" / "sparse.bin"
    assert method in ("reflink", "copy")
    assert sha256_file(copy) == sha256_file(sparse)
    assert copy.stat().st_blocks * 512 < 2**20, "the 64 MB hole was written out"


def test_a_later_import_of_the_same_bytes_adds_its_tags_and_notes(root: Path, tmp_path: Path,
                                                                   demo_gguf: Path) -> None:
    first = import_now(ImportRequest(kind="demo", tags=["team-a"], notes="Our baseline."))
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(demo_gguf.read_bytes())
    job = submit_import(ImportRequest(kind="path", path=str(copy), tags=["edge", "team-a"],
                                      notes="Ships on the kiosk.")).job
    from worker.runner import run_to_completion

    assert run_to_completion(job.id).state == "succeeded"
    after = sources.get_source(first.id)
    assert after.tags == ["edge", "team-a"]
    assert after.notes == "Our baseline.\n\nShips on the kiosk."
    assert "added the tags edge" in jobs_log(job.id)
    assert sources.count_sources() == 1


def jobs_log(job_id: str) -> str:
    from catalog import jobfiles

    return jobfiles.log_path(job_id).read_text()


def test_an_exported_folder_imported_again_is_that_variant(root: Path, tmp_path: Path) -> None:
    src = import_now(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny"))))
    exported = export_variant(src.root_variant_id, tmp_path / "out")  # adds manifest.json and RUN.md
    job = submit_import(ImportRequest(kind="path", path=str(exported))).job
    from worker.runner import run_to_completion

    done = run_to_completion(job.id)
    assert (done.result["variant_id"], done.result["existing"]) == (src.root_variant_id, True)
    assert sources.count_sources() == 1


def test_importing_the_bytes_of_a_deleted_variant_restores_it(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "tiny")
    src = import_now(ImportRequest(kind="path", path=str(folder)))
    variants.delete_variant(src.root_variant_id)
    import_now(ImportRequest(kind="path", path=str(folder)))
    restored = variants.get_variant(src.root_variant_id)
    assert restored.state == "available" and variants.files_present(restored)
    assert export_variant(restored.id, tmp_path / "out").is_dir()


def test_an_import_killed_while_publishing_leaves_no_file_without_a_row(root: Path, tmp_path: Path) -> None:
    job = submit_import(ImportRequest(kind="path", path=str(tiny_hf_folder(tmp_path / "tiny")))).job
    assert jobs.claim("test", job_id=job.id) is not None
    child = multiprocessing.get_context("fork").Process(target=_run_and_die_after_placing, args=(job.id,))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    assert [p for p in (root / "artifacts").rglob("*") if p.is_file()], "the kill came after the move"
    jobs.reconcile_now()
    assert jobs.get_job(job.id).state == "interrupted"
    assert_no_source_and_no_file(root)


def _run_and_die_after_placing(job_id: str) -> None:
    """The job process, killed (failure injection) right after its files moved into place and
    before the transaction that records them commits."""
    from worker import child, publish

    place = publish._place

    def place_then_die(*args: object) -> None:
        place(*args)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGKILL)

    publish._place = place_then_die  # type: ignore[assignment]
    jobs.set_process(job_id, os.getpid())
    child.run(job_id)


def make_hf_cache(cache: Path, repo_id: str, source: Path) -> str:
    """The real Hub cache layout: blobs by hash, snapshots of links, refs/main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in source.iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        (repo / "blobs" / digest).write_bytes(f.read_bytes())
        (snap / f.name).symlink_to(Path("../../blobs") / digest)
    return commit


def test_local_hf_cache_import(root: Path, tmp_path: Path) -> None:
    from huggingface_hub import scan_cache_dir

    cache = tmp_path / "hub"
    commit = make_hf_cache(cache, "acme/tiny", tiny_hf_folder(tmp_path / "tiny"))
    assert [r.repo_id for r in scan_cache_dir(cache).repos] == ["acme/tiny"]  # the layout is real
    assert cached_models(str(cache))[0]["repo_id"] == "acme/tiny"
    src = import_now(ImportRequest(kind="hf_cache", path=str(cache), repo_id="acme/tiny"))
    assert src.origin_kind == "hf_cache" and src.origin_ref == "acme/tiny" and src.origin_revision == commit
    stored = variants.get_variant(src.root_variant_id)
    assert {f.relpath for f in stored.files} == {"config.json", "model.safetensors", "README.md"}


def test_hub_import_says_the_hub_is_unreachable(root: Path) -> None:
    job = submit_import(ImportRequest(kind="hub", repo_id="HuggingFaceTB/SmolLM2-135M-Instruct")).job
    from worker.runner import run_to_completion

    done = run_to_completion(job.id)
    assert done.state == "failed"
    assert "cannot be reached" in done.error
    assert sources.count_sources() == 0


def test_upload_import_removes_its_temporary_folder(root: Path, demo_gguf: Path) -> None:
    upload = config.uploads_dir() / "abc123"
    upload.mkdir()
    (upload / "model.gguf").write_bytes(demo_gguf.read_bytes())
    src = import_now(ImportRequest(kind="upload", path=str(upload / "model.gguf")))
    assert src.origin_kind == "upload"
    assert not upload.exists()


# ------------------------------------------------------------------------------- bad input


def _refused(req: ImportRequest, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        submit_import(req)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_truncated_gguf(root: Path, tmp_path: Path, demo_gguf: Path) -> None:
    """A cut GGUF whose header is whole is refused before any job: pre-flight reads the header
    and compares the tensors' extent with the file's length."""
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(demo_gguf.read_bytes()[: 5_000_000])
    _refused(ImportRequest(kind="path", path=str(cut)), "truncated")
    assert jobs.list_jobs() == [] and sources.count_sources() == 0
    assert_clean(root)


def test_not_a_gguf(root: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_text("hello, I am text")
    _refused(ImportRequest(kind="path", path=str(fake)), "not a GGUF file")
    assert_clean(root)


def test_hf_folder_without_weights(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "noweights")
    (folder / "model.safetensors").unlink()
    _refused(ImportRequest(kind="path", path=str(folder)), "no .safetensors weights")
    assert_clean(root)


def test_hf_folder_without_config(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "noconfig")
    (folder / "config.json").unlink()
    _refused(ImportRequest(kind="path", path=str(folder)), "no config.json")
    assert_clean(root)


def test_huge_safetensors_header(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "huge")
    with open(folder / "model.safetensors", "r+b") as fh:
        fh.write(struct.pack("<Q", 2**40))
    job = submit_import(ImportRequest(kind="path", path=str(folder))).job
    from worker.runner import run_to_completion

    done = run_to_completion(job.id)
    assert done.state == "failed" and "header" in done.error
    assert sources.count_sources() == 0


def test_pickle_file_is_never_loaded(root: Path, tmp_path: Path) -> None:
    pkl = tmp_path / "model.pt"
    pkl.write_bytes(b"\x80\x04crandom\nattack\n.")
    _refused(ImportRequest(kind="path", path=str(pkl)), "pickle")
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04.")
    _refused(ImportRequest(kind="path", path=str(folder)), "pickle")
    assert_clean(root)


def test_symlink_out_of_the_folder(root: Path, tmp_path: Path) -> None:
    folder = tiny_hf_folder(tmp_path / "linked")
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (folder / "tokenizer.json").symlink_to(secret)
    _refused(ImportRequest(kind="path", path=str(folder)), "leads out of the imported folder")
    assert_clean(root)


def test_path_outside_the_allowed_roots(root: Path) -> None:
    _refused(ImportRequest(kind="path", path="/etc/hostname"), "outside the folders imports may read")
    assert_clean(root)


def test_missing_path(root: Path, tmp_path: Path) -> None:
    _refused(ImportRequest(kind="path", path=str(tmp_path / "nothing-here")), "Nothing exists")
    assert_clean(root)


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "<b>bold</b>", "x'); DROP TABLE sources; --"])
def test_names_with_separators_html_or_sql(root: Path, tmp_path: Path, name: str) -> None:
    folder = tiny_hf_folder(tmp_path / "ok")
    _refused(ImportRequest(kind="path", path=str(folder), name=name), "not allowed")
    assert_clean(root)
