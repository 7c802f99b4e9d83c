"""Bringing models into the catalog: GGUF files, Hugging Face folders, the local HF cache,
the Hub, uploads and the demo model.

`submit_import` checks the request at once (cheap checks, one sentence on failure) and queues
an import job. `run_import_job` runs in the job's process: it copies the files into the job's
work folder (reflinks where the file system can; never hard links, which would share later
changes to the original), hashes the copy with progress, reads metadata, and records the source
with its root variant in one transaction. Bytes already stored, as a source or any variant,
give that variant back, also when two imports of them run at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backends import demo
from backends.registry import (
    FALLBACK_IMPORT_FORMAT,
    check_hub_snapshot,
    hub_patterns,
    importable_kinds,
    needed_by_a_format,
    recognise_import,
)
from catalog import config, db, jobs
from catalog.errors import ConflictError, InvalidInputError
from catalog.files import (
    PICKLE_SUFFIXES,
    allowed_name,
    check_regular_tree,
    copy_file,
    hash_folder,
    list_model_files,
    remove_tree,
    resolve_server_path,
    validate_name,
)
from catalog.identity import content_hash, source_id, variant_id
from catalog.records import Source, Variant
from catalog.sources import SourceMeta, get_source, insert_source, merge_into_source
from catalog.variants import (
    NewVariant,
    files_present,
    find_by_content,
    insert_variant,
    mark_restored,
    stored_by_content,
    variant_dir,
    variant_path,
)
from worker.context import JobContext
from worker.publish import Placement

log = logging.getLogger(__name__)

KINDS = ("path", "hf_cache", "hub", "upload", "demo")
HUB_HOST = ("huggingface.co", 443)


@dataclass
class ImportRequest:
    kind: str                       # one of KINDS
    path: str = ""                  # server path, upload folder, or HF cache folder
    repo_id: str = ""               # for hub and hf_cache
    revision: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    added_by: str = ""
    trust_remote_code: bool = False
    example: str = demo.DEFAULT_EXAMPLE  # for kind "demo": which embedded example


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInputError(
            f"{path.name} is a pickle file, which is never loaded here because it can run code; "
            "import safetensors or GGUF instead."
        )


def _hf_cache_snapshot(cache_dir: str, repo_id: str, revision: str) -> tuple[Path, str]:
    """The snapshot folder of a repo in a local HF cache, checked with huggingface_hub's scanner."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.utils import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or None)
    except (CacheNotFound, OSError, ValueError) as exc:
        where = cache_dir or "the default place"
        raise InvalidInputError(f"No Hugging Face cache was found at {where}; check the folder ({exc}).") from None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            revs = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
            for rev in revs:
                if not revision or rev.commit_hash.startswith(revision) or revision in rev.refs:
                    return Path(rev.snapshot_path), rev.commit_hash
            raise InvalidInputError(f"The cache holds {repo_id} but not revision {revision!r}.")
    raise InvalidInputError(f"The local Hugging Face cache has no model {repo_id!r}; check the name.")


def cached_models(cache_dir: str = "") -> list[dict[str, Any]]:
    """Models in a local Hugging Face cache, for the Import page's picker."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.utils import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or None)
    except (CacheNotFound, OSError, ValueError):
        return []
    out = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            out.append({"repo_id": repo.repo_id, "revision": rev.commit_hash,
                        "refs": sorted(rev.refs), "size": rev.size_on_disk})
    return out


def preflight(req: ImportRequest) -> dict[str, Any]:
    """Check a request cheaply before any job exists; return the recipe the job will run."""
    if req.kind not in KINDS:
        raise InvalidInputError(f"Unknown import kind {req.kind!r}; use one of {', '.join(KINDS)}.")
    recipe: dict[str, Any] = asdict(req)
    if req.name:
        recipe["name"] = validate_name(req.name)
    for tag in req.tags:
        validate_name(tag)
    if req.kind == "demo":
        example = demo.get_example(req.example)
        path = demo.example_path(example.key)
        recipe["path"] = str(path) if path is not None else ""
        recipe["name"] = recipe["name"] or example.name
        return recipe
    if req.kind == "hub":
        if not req.repo_id or req.repo_id.count("/") != 1 or any(c in req.repo_id for c in " <>'\";"):
            raise InvalidInputError(f"{req.repo_id!r} is not a Hub repo id; write it as owner/name.")
        return recipe
    settings = config.load_settings()
    if req.kind == "hf_cache":
        # the cache itself may be large: only the chosen snapshot is walked
        cache = resolve_server_path(req.path, settings.allowed_paths, walk=False) if req.path else None
        snapshot, commit = _hf_cache_snapshot(str(cache or ""), req.repo_id, req.revision)
        check_regular_tree(snapshot)
        check_hub_snapshot(snapshot, req.repo_id)
        recipe.update(path=str(snapshot), revision=commit)
        return recipe
    path = resolve_server_path(req.path, settings.allowed_paths)
    if path.is_file():
        _refuse_pickle(path)
    fmt = recognise_import(path)
    if path.is_file() and fmt.name == FALLBACK_IMPORT_FORMAT:
        raise InvalidInputError(f"{path.name} is not a model file any installed toolkit imports; import "
                                f"{importable_kinds()}.")
    assert fmt.import_check is not None
    recipe["path"] = str(fmt.import_check.check(path))
    return recipe


def submit_import(req: ImportRequest, recipe: dict[str, Any] | None = None) -> jobs.Submission:
    """Queue the import; `recipe` is preflight's, when the caller ran it before taking the
    catalog's lock (reading a user's files must never hold every other user up)."""
    recipe = recipe if recipe is not None else preflight(req)
    label = recipe.get("name") or recipe.get("repo_id") or Path(recipe["path"]).name
    return jobs.submit("import", recipe, title=f"Import {label}", submitted_by=req.added_by or None)


# ----------------------------------------------------------------------------- in the job


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _fetch_from_hub(ctx: JobContext, recipe: dict[str, Any]) -> Path:
    if not _hub_reachable():
        raise InvalidInputError(
            "The Hugging Face Hub cannot be reached from this server; download the model "
            "elsewhere and import its folder, or import it from the local Hugging Face cache."
        )
    os.environ["HF_HUB_OFFLINE"] = "0"  # this one job is allowed on the network
    os.environ["HF_HUB_DOWNLOAD_TIMEOUT"] = str(int(config.load_settings().hub_timeout_s))
    from huggingface_hub import snapshot_download

    ctx.log(f"fetching {recipe['repo_id']} from the Hub")
    target = ctx.work_dir / "hub"
    snapshot_download(
        recipe["repo_id"], revision=recipe.get("revision") or None, local_dir=target,
        allow_patterns=hub_patterns(),  # every format's own files
    )
    return target


def _build_example(ctx: JobContext, recipe: dict[str, Any]) -> Path:
    """An example made by this repository's code (the digits CNN, trained in seconds)."""
    from workloads import digits_cnn

    ctx.progress(0.03, "training the digits CNN on scikit-learn's digits")
    scores = digits_cnn.trained(ctx.work_dir / "example")
    ctx.log(f"trained the digits CNN: held-out accuracy {scores['test_accuracy']:.4f}")
    return ctx.work_dir / "example"


def _stage_files(ctx: JobContext, origin: Path, containment: Path | None = None) -> Path:
    """Copy the model's files into the work folder (reflinks where the file system can), so the
    catalog's bytes never change when the user's original does. Pickle files are left behind:
    the catalog never holds one."""
    staged = ctx.work_dir / "files"
    staged.mkdir(parents=True, exist_ok=True)
    if origin.is_file():
        ctx.log(f"{copy_file(origin, staged / origin.name)} of {origin.name}")
        return staged
    list_model_files(containment or origin)  # refuses links that escape the allowed folder
    methods: set[str] = set()
    for path in list_model_files(origin) if containment is None else _snapshot_files(origin):
        if path.suffix.lower() in PICKLE_SUFFIXES and not needed_by_a_format(path):
            ctx.log(f"skipped pickle file {path.name}")
            continue
        methods.add(copy_file(path, staged / path.relative_to(origin)))
    ctx.log(f"stored the files as {' and '.join(sorted(methods)) or 'nothing'}")
    _drop_export_extras(ctx, staged)
    return staged


def _drop_export_extras(ctx: JobContext, staged: Path) -> None:
    """A folder this catalog exported holds manifest.json, RUN.md and its model card (README.md,
    the variant's own card moved to README.original.md) beside the variant's files; undo that so
    that its bytes are recognised as the variant they came from."""
    manifest = staged / "manifest.json"
    try:
        data = json.loads(manifest.read_text()) if manifest.is_file() else None
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and {"variant", "lineage", "files"} <= data.keys():
        manifest.unlink()
        (staged / "RUN.md").unlink(missing_ok=True)
        if (staged / "README.original.md").is_file():
            (staged / "README.original.md").replace(staged / "README.md")
        else:
            (staged / "README.md").unlink(missing_ok=True)
        ctx.log("left out manifest.json, RUN.md and the model card, written by a catalog export")


def _snapshot_files(snapshot: Path) -> list[Path]:
    # Cache snapshots are links into ../../blobs, already checked against the repo folder.
    return sorted(p for p in snapshot.rglob("*") if p.is_file())


def meta_base(recipe: dict[str, Any]) -> SourceMeta:
    origin_kind = {"path": "server_path"}.get(recipe["kind"], recipe["kind"])
    return SourceMeta(name=recipe.get("name") or Path(recipe.get("repo_id") or recipe["path"]).stem,
                      origin_kind=origin_kind, origin_ref=recipe.get("repo_id") or recipe.get("path"),
                      origin_revision=recipe.get("revision") or None, tags=tuple(recipe.get("tags") or ()),
                      notes=recipe.get("notes") or "", added_by=recipe.get("added_by") or None)


def _describe(staged: Path, recipe: dict[str, Any]) -> tuple[SourceMeta, str, str, dict[str, Any]]:
    """_read_description, with a name read from the file or folder (a GGUF's general.name such as
    "meta-llama/Llama-3.2-1B-Instruct", a folder "digits [v2]") made allowed; the original is kept
    in the root variant's metadata as name_in_file."""
    meta, fmt, precision, extra = _read_description(staged, recipe)
    allowed = allowed_name(meta.name)
    if allowed != meta.name:
        extra = dict(extra, name_in_file=meta.name)
        meta.name = allowed
    return meta, fmt, precision, extra


def _read_description(staged: Path, recipe: dict[str, Any]) -> tuple[SourceMeta, str, str, dict[str, Any]]:
    """Metadata, format, precision and extra facts for the staged files, from their format's toolkit."""
    example = demo.get_example(recipe.get("example") or demo.DEFAULT_EXAMPLE) if recipe["kind"] == "demo" else None
    meta = meta_base(recipe)
    if example is not None:
        meta.origin_ref = example.origin
    check = recognise_import(staged).import_check
    assert check is not None
    return check.describe(staged, meta, recipe, example.license if example else None)


def run_import_job(ctx: JobContext) -> dict[str, Any]:
    recipe = ctx.job.recipe
    try:
        return _import(ctx, recipe)
    finally:
        if recipe["kind"] == "upload":  # an upload's temporary folder goes, success or not
            remove_tree(Path(recipe["path"]).parent if Path(recipe["path"]).is_file() else Path(recipe["path"]))


def _import(ctx: JobContext, recipe: dict[str, Any]) -> dict[str, Any]:
    ctx.progress(0.02, "checking the input")
    if recipe["kind"] == "hub":
        origin, containment = _fetch_from_hub(ctx, recipe), None
    elif recipe["kind"] == "demo" and not recipe["path"]:
        origin, containment = _build_example(ctx, recipe), None
    else:
        origin = Path(recipe["path"])
        # A cache snapshot links into the repo's blobs folder: contain links to the repo folder.
        containment = origin.parent.parent if recipe["kind"] == "hf_cache" else None
    ctx.progress(0.05, "copying the files into the data root")
    staged = _stage_files(ctx, origin, containment)
    ctx.progress(0.1, "hashing files")

    def hashing(done: int, total: int) -> None:
        ctx.progress(0.1 + 0.7 * done / max(total, 1), f"hashing {done / 2**20:.0f} of {total / 2**20:.0f} MB")

    hashed = hash_folder(staged, hashing)  # the stored copy's bytes, not what was read
    chash = content_hash([(rel, sha) for rel, _, sha in hashed])
    sid = source_id(chash)
    vid = variant_id(None, "import", recipe["kind"], {"content_hash": chash}, {})
    # Before anything is placed, so that cleanup after a kill knows which folder is this job's.
    jobs.set_target(ctx.job.id, sid, vid)
    described = None
    if _stored(hashed) is None:  # skip reading metadata for known bytes; publish asks again under the lock
        ctx.progress(0.85, "reading metadata")
        described = _describe(staged, recipe)

    def record(conn: db.Database) -> Placement:
        stored = find_by_content(conn, hashed)
        if stored is not None:
            return _known_bytes(conn, ctx, stored, staged)
        if described is None:  # rows are never removed, so this cannot happen
            raise ConflictError("The catalog changed while this import ran; retry it.")
        meta, fmt, precision, extra = described
        insert_source(conn, sid, meta, chash, vid)
        insert_variant(conn, NewVariant(
            id=vid, source_id=sid, parent_id=None, format=fmt, precision=precision,
            backend="import", conversion=recipe["kind"], options={"content_hash": chash},
            job_id=ctx.job.id, metadata=extra, files=hashed))
        size = sum(h[1] for h in hashed) / 2**20
        return Placement({"source_id": sid, "variant_id": vid, "existing": False},
                         final=variant_dir(sid, vid), notes=[f"imported {meta.name} as source {sid} ({size:.1f} MB)"])

    return ctx.publish(staged, record)


def _stored(hashed: list[tuple[str, int, str]]) -> Variant | None:
    return stored_by_content(hashed)


def _known_bytes(conn: db.Database, ctx: JobContext, stored: Variant, staged: Path) -> Placement:
    """These bytes are a stored variant (a source's own files, or a derived one exported and
    brought back): return it, add this import's tags and notes to its source, and put its files
    back if they went missing."""
    recipe = ctx.job.recipe
    jobs.set_target(ctx.job.id, stored.source_id, stored.id)
    what = "the source's own files" if stored.parent_id is None else f"variant {stored.id} ({stored.label})"
    notes = [f"these bytes are already stored as {what} of {stored.source_id}; nothing new was stored"]
    notes += merge_into_source(conn, stored.source_id, recipe.get("tags") or [], recipe.get("notes") or "")
    name = get_source(stored.source_id).name
    if recipe.get("name") and recipe["name"] != name:
        notes.append(f"the source keeps its name {name}; rename it on its Model page")
    result = {"source_id": stored.source_id, "variant_id": stored.id, "existing": True}
    if stored.state == "available" and files_present(stored):
        return Placement(result, notes=notes)
    if len(stored.files) == 1:  # one file is known by its bytes alone: give it the recorded name
        [only] = [p for p in staged.rglob("*") if p.is_file()]
        recorded = staged / stored.files[0].relpath
        recorded.parent.mkdir(parents=True, exist_ok=True)
        only.rename(recorded)
    mark_restored(conn, stored.id)
    notes.append(f"restored the missing files of {stored.id}")
    return Placement(dict(result, restored=True), restore=variant_path(stored), notes=notes)


def import_now(req: ImportRequest) -> Source:
    """Run an import in this process's own job child and wait (CLI and tests)."""
    from worker.runner import run_to_completion

    sub = submit_import(req)
    assert sub.job is not None
    job = run_to_completion(sub.job.id)
    if job.state != "succeeded":
        raise InvalidInputError(job.error or f"The import ended {job.state}.")
    return get_source(job.result["source_id"])
