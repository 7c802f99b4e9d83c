"""Every change a user can make, as a function of (actor, ...): the role check, the change and
its audit row. Nested catalog calls reuse the transaction opened here (catalog.db.connect), so a
change is never stored without its audit row, nor a row without its change."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict
from pathlib import Path
from typing import Any

from catalog import audit, calibration, comparisons, config, db, jobs, sources, storage, uploads, users, variants
from catalog.access import Actor, require
from catalog.comparisons import Comparison
from catalog.errors import CatalogError, ConflictError, PermissionDeniedError
from catalog.records import Job, Source, Variant

log = logging.getLogger(__name__)

REFUSED = "refused"  # the audit action of an attempt the catalog refused: who tried what, and why
_inside_action: ContextVar[bool] = ContextVar("inside_action", default=False)


def audits_refusals(action: Callable[..., Any]) -> Callable[..., Any]:
    """A refused attempt (a role, another user's upload, one's own admin role) leaves an audit row
    of its own, committed although the change is not: who tried what, on which object, and the
    refusal's sentence. Only the outermost action records it (an upload's import is one attempt)."""

    signature = inspect.signature(action)

    @functools.wraps(action)
    def attempt(actor: Actor, *args: Any, **kwargs: Any) -> Any:
        outermost = not _inside_action.get()
        token = _inside_action.set(True)
        try:
            return action(actor, *args, **kwargs)
        except PermissionDeniedError as exc:
            if outermost:
                _record_refusal(actor, action.__name__, _target(signature, actor, args, kwargs), str(exc))
            raise
        finally:
            _inside_action.reset(token)

    return attempt


TARGETS = ("variant_id", "variant_ids", "job_id", "comparison_id", "source_id", "name", "cache_dir")


def _target(signature: inspect.Signature, *args: Any) -> str | None:
    """What the refused attempt was on: the action's object id, a user's name, the path it named."""
    actor, positional, named = args
    try:
        bound = signature.bind_partial(actor, *positional, **named).arguments
    except TypeError:
        return None
    if "req" in bound:  # an import: its repo id, path or example
        req = bound["req"]
        return getattr(req, "repo_id", "") or getattr(req, "path", "") or getattr(req, "example", None)
    found = next((bound[k] for k in TARGETS if k in bound), None)
    return ",".join(found) if isinstance(found, list) else found


def _record_refusal(actor: Actor, tried: str, target: str | None, reason: str) -> None:
    try:
        actor = users.current(actor)  # the role the refusal was made on
        with db.connect() as conn:
            audit.record(conn, actor.name, REFUSED, target, {"tried": tried, "role": actor.role, "reason": reason})
    except (CatalogError, OSError) as exc:  # a read-only or busy catalog: the refusal itself still stands
        log.warning("could not audit %s's refused %s: %s", actor.name, tried, exc)


@contextmanager
def _change(actor: Actor, permission: str) -> Iterator[Callable[[str, str | None, dict[str, Any] | None], None]]:
    """Check the role (as the catalog holds it now), open the transaction, and hand out the audit
    writer bound to it."""
    actor = users.current(actor)
    require(actor, permission)
    with db.connect() as conn:
        yield lambda action, object_id, detail=None: audit.record(conn, actor.name, action, object_id, detail)


# --------------------------------------------------------------------------- models and jobs

@audits_refusals
def import_model(actor: Actor, req: Any) -> jobs.Submission:
    from backends.importers import preflight, submit_import

    actor = users.current(actor)
    require(actor, "import")
    if getattr(req, "trust_remote_code", False):
        require(actor, "run_code")
    uploads.check_not_anothers(req.path, actor.name)
    req.added_by = actor.name  # from the session, never from a form field
    # The user's files are read before the catalog's lock is taken, so a slow or hostile path
    # (a FIFO, a huge folder) holds up only this request.
    recipe = preflight(req)
    detail = {"kind": req.kind, "ref": req.repo_id or req.path or recipe.get("path") or None}
    if req.kind == "demo":
        detail["example"] = req.example  # which embedded example (an example built here has no path)
    with _change(actor, "import") as log:
        sub = submit_import(req, recipe)
        log("import", sub.job.id if sub.job else None, detail)
    return sub


@audits_refusals
def import_upload(actor: Actor, files: list[uploads.UploadedFile], **request: Any) -> jobs.Submission:
    """Files uploaded in the browser: staged in the actor's own uploads folder, then imported like
    a server path (request: name, tags, notes, trust_remote_code). The role is checked before a
    byte is written, and a refused import removes what was staged."""
    from backends.importers import ImportRequest
    from backends.registry import FALLBACK_IMPORT_FORMAT, recognise_import

    def model_file(path: Path) -> bool:  # a lone file a toolkit imports as itself, else the folder is imported
        return recognise_import(path).name != FALLBACK_IMPORT_FORMAT

    actor = users.current(actor)
    require(actor, "import")
    if request.get("trust_remote_code"):
        require(actor, "run_code")
    target = uploads.stage_upload(files, single_file=model_file, owner=actor.name)
    try:
        return import_model(actor, ImportRequest(kind="upload", path=str(target), **request))
    except BaseException:
        uploads.discard(target)  # a refused upload leaves nothing behind
        raise


@audits_refusals
def hf_cache_models(actor: Actor, cache_dir: str) -> list[dict[str, Any]]:
    """The models in a Hugging Face cache, for the Import page's picker: an importer's view, and a
    typed folder must lie inside the folders imports may read (nothing is read before both checks)."""
    from backends.importers import cached_models
    from catalog.files import resolve_server_path

    actor = users.current(actor)
    require(actor, "import")
    if cache_dir.strip():
        cache_dir = str(resolve_server_path(cache_dir, config.load_settings().allowed_paths, walk=False))
    return cached_models(cache_dir)


def _conversion_refusal(actor: Actor, options: dict[str, Any]) -> None:
    """What convert refuses before anything is queued or saved, and what a check (the CLI's
    --check) refuses the same way: the role, trust_remote_code's, and a calibration file typed as a
    path into another user's uploads."""
    require(actor, "convert")
    if options.get("trust_remote_code"):
        require(actor, "run_code")
    uploaded = options.get("calibration")
    uploads.check_not_anothers(uploaded if isinstance(uploaded, str) else None, actor.name)


def plan_conversion(actor: Actor, conversion: str, variant_id: str, options: dict[str, Any],
                    calibration_upload: uploads.UploadedFile | None = None) -> tuple[list[Any], list[Any]]:
    """What Submit would queue (convert_job.PlannedStep each) and the pre-flight problems, for the
    Convert form to show before anything is queued. Writes nothing that stays: an uploaded
    calibration file is checked from a scratch copy (calibration.checked_upload), and only for a
    role that may convert (a viewer's upload is never written, and its plan uses the shipped data).
    A typed path into another user's uploads is an error here, as Submit refuses it (the role is
    the page's to show, on its disabled button)."""
    from backends import convert_job
    from backends.preflight import Problem

    actor = users.current(actor)
    uploaded = options.get("calibration")
    try:
        uploads.check_not_anothers(uploaded if isinstance(uploaded, str) else None, actor.name)
    except PermissionDeniedError as exc:
        return [], [Problem("error", str(exc))]
    if calibration_upload is None or not actor.can("convert"):
        return convert_job.plan(conversion, variant_id, options)
    with calibration.checked_upload(*calibration_upload, owner=actor.name) as path:
        return convert_job.plan(conversion, variant_id, {**options, "calibration": str(path)})


@audits_refusals
def check_conversion(actor: Actor, conversion: str, variant_id: str,
                     options: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Every check convert makes, nothing queued (the CLI's --check): the refusals convert raises,
    raised the same way, then the plan and its pre-flight problems."""
    from backends import convert_job

    actor = users.current(actor)
    _conversion_refusal(actor, options)
    return convert_job.plan(conversion, variant_id, options)


@audits_refusals
def convert(actor: Actor, conversion: str, variant_id: str, options: dict[str, Any],
            calibration_upload: uploads.UploadedFile | None = None) -> list[jobs.Submission]:
    """Queue a conversion's jobs. calibration_upload (name, bytes) from the browser is saved in the
    actor's uploads, after the checks (check_conversion makes the same), and given as the
    calibration file."""
    from backends import convert_job

    actor = users.current(actor)
    _conversion_refusal(actor, options)  # before an uploaded file is written anywhere
    if calibration_upload is not None:
        options = {**options, "calibration": str(calibration.save_upload(*calibration_upload, owner=actor.name))}
    with _change(actor, "convert") as log:
        subs = convert_job.submit(conversion, variant_id, options, submitted_by=actor.name)
        for sub in subs:
            log("convert", sub.job.id if sub.job else sub.variant.id if sub.variant else None,
                {"conversion": conversion, "input": variant_id, "options": options})
    return subs


@audits_refusals
def benchmark(actor: Actor, variant_ids: list[str], profile: str, **kwargs: Any) -> list[jobs.Submission]:
    from bench.jobs.common import submit_benchmarks

    with _change(actor, "benchmark") as log:
        subs = submit_benchmarks(variant_ids, profile, submitted_by=actor.name, **kwargs)
        for sub in subs:
            log("benchmark", sub.job.id if sub.job else None, {"profile": profile, **kwargs})
    return subs


# Results measured elsewhere: a device run's result.json, an upstream tool's report (bench.imported_results).
IMPORT_RESULT_PERMISSION = "benchmark"  # an imported result charts beside the catalog's own, as a run does


@audits_refusals
def import_result(actor: Actor, file_name: str, data: bytes, variant_id: str | None = None) -> list[str]:
    """Store a device run's result (one result per variant it ran) or an upstream benchmark tool's
    report (of the variant it names, or variant_id), as results of the machine it names; returns
    their ids. Everything is checked before anything is stored, each with its audit row."""
    from bench.imported_results import read_imported, store

    actor = users.current(actor)
    require(actor, IMPORT_RESULT_PERMISSION)  # before the file is read
    found = read_imported(file_name, data, variant_id)
    ids = []
    with _change(actor, IMPORT_RESULT_PERMISSION) as log:
        for item in found:
            rid = store(item, actor.name)
            log("import_result", rid, {"variant": item.variant.id, "protocol": item.protocol_id,
                                       "machine": item.machine, "flags": item.flags, "file": Path(file_name).name})
            ids.append(rid)
    return ids


@audits_refusals
def device_bundle(actor: Actor, variant_ids: list[str], out: Path | None = None, profile: str = "quick",
                  include_files: bool = True) -> Path:
    """A device-run bundle of these variants (bench.device_bundle): written to out, or under the
    data root's exports folder for the browser's download button. Bundling copies variants out, as
    an export does."""
    from datetime import UTC, datetime

    from bench.device_bundle import write_bundle

    with _change(actor, "export") as log:
        log("device_bundle", ",".join(variant_ids), {"profile": profile, "files": include_files,
                                                      "dest": str(out) if out else "exports"})
    if out is None:
        out = config.data_root() / "exports" / f"bundle-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
    # written after the audit row's commit: copying weights must not hold the catalog's lock
    write_bundle(variant_ids, out, profile, include_files, made_by=users.current(actor).name)
    return out


# Trying a model starts a runner process on the server that loads the model and uses its CPU and
# memory, as a benchmark does: so it needs what a benchmark needs (an editor; catalog/access.py),
# and a viewer cannot load the server by trying models over and over.
TRY_PERMISSION = "try_model"
PROMPT_IN_AUDIT = 200  # characters of a tried prompt kept in its audit row


@audits_refusals
def try_prompt(actor: Actor, variant_id: str, prompt: str, max_tokens: int = 48) -> dict[str, Any]:
    """Generate from one prompt on one variant in a runner process: {"text", "seconds",
    "runtime"} or {"error"}. The audit row is committed before the process starts, so a model
    loading for a minute never holds the catalog's lock."""
    from backends.registry import main_file
    from bench.try_prompt import run_in_process

    with _change(actor, TRY_PERMISSION) as log:
        variant = variants.get_variant(variant_id)
        log("try_model", variant_id, {"prompt": prompt[:PROMPT_IN_AUDIT], "max_tokens": max_tokens})
    return run_in_process(variant.format, main_file(variant), prompt, max_tokens)


@audits_refusals
def try_encoder_classifier(actor: Actor, task: str | None, variant_ids: list[str], baseline_id: str,
                           image: int | None = None, sentences: list[str] | None = None) -> dict[str, Any]:
    """One input (a held-out digit's index, or two sentences) on every given variant, in one runner
    process; the baseline's folder gives the tokenizer. {"rows"} or {"error"}."""
    from backends.registry import main_file
    from bench.try_encoder_classifier import run_in_process

    with _change(actor, TRY_PERMISSION) as log:
        known = {v: variants.get_variant(v) for v in dict.fromkeys([baseline_id, *variant_ids])}  # with files
        log("try_model", None, {"variants": variant_ids, "task": task,
                                "input": {"image": image} if image is not None else {"sentences": sentences}})
    folder = main_file(known[baseline_id])
    spec: dict[str, Any] = {"task": task, "tokenizer": str(folder if folder.is_dir() else folder.parent),
                            "variants": [[known[v].label, known[v].format, str(main_file(known[v]))]
                                         for v in variant_ids]}
    if image is not None:
        spec["image"] = image
    else:
        spec["sentences"] = list(sentences or [])
    return run_in_process(spec)


@audits_refusals
def cancel_job(actor: Actor, job_id: str) -> Job:
    """The row records the request; the kill runs after the commit, because a job told to stop
    may write to the catalog on its way out and must not wait on this transaction's lock."""
    with _change(actor, "manage_jobs") as log:
        job = jobs.get_job(job_id)
        if not job.active:  # refused before any row is written
            raise ConflictError(f"Job {job_id} has already {job.state}; there is nothing to cancel.")
        log("cancel_job", job_id, {"state": job.state})
    return jobs.cancel(job_id)


@audits_refusals
def retry_job(actor: Actor, job_id: str) -> Job:
    with _change(actor, "manage_jobs") as log:
        job = jobs.retry(job_id)
        log("retry_job", job_id, None)
    return job


@audits_refusals
def delete_variant(actor: Actor, variant_id: str) -> Variant:
    with _change(actor, "delete") as log:
        # the row first: removed files cannot be rolled back if the row failed after them
        log("delete_variant", variant_id, {"label": variants.get_variant(variant_id).label})
        return variants.delete_variant(variant_id)


@audits_refusals
def clean_intermediates(actor: Actor) -> int:
    """Delete every intermediate variant, each as its own audited change, so that one a job still
    uses is kept (and said so in the log) without undoing the others. Returns the bytes freed."""
    require(actor, "delete")
    freed = 0
    for row in storage.intermediates():
        try:
            delete_variant(actor, row["id"])
            freed += row["size_bytes"] or 0
        except ConflictError as exc:  # a job still uses it: keep it
            log.info("kept intermediate %s: %s", row["id"], exc)
    return freed


@audits_refusals
def clean_orphans(actor: Actor) -> int:
    with _change(actor, "delete") as log:
        log("clean_orphans", None, {"orphans": [str(o.path) for o in storage.find_orphans()]})
        return storage.clean_orphans()


@audits_refusals
def export_variant(actor: Actor, variant_id: str, dest: Path | None = None, as_zip: bool = True) -> Path:
    """A variant copied out with its manifest (checked against the files) and run snippet: into
    dest, or as a zip under the data root's exports folder for the browser's download button."""
    from backends import export

    with _change(actor, "export") as log:
        log("export", variant_id, {"zip": as_zip, "dest": str(dest) if dest else "exports"})
    # written after the audit row's commit: a long copy must not hold the catalog's lock
    return export.export_variant(variant_id, dest, as_zip=as_zip) if dest else export.export_to_downloads(variant_id)


@audits_refusals
def edit_notes(actor: Actor, source_id: str, **form: Any) -> Source:
    with _change(actor, "edit_notes") as log:
        saved = sources.edit_source(source_id, **form)
        log("edit_notes", source_id, {"tags": saved.tags, "notes_changed": form["notes"] != form["shown_notes"]})
    return saved


# --------------------------------------------------------------------------- comparisons

@audits_refusals
def save_comparison(actor: Actor, name: str, spec: dict[str, Any], same_name_ok: bool = False) -> Comparison:
    """A new saved comparison; a name in use is refused (comparisons.SameNameError) unless the
    user confirmed keeping both (same_name_ok)."""
    with _change(actor, "save_comparison") as log:
        made = comparisons.save_comparison(name, spec, actor.name, same_name_ok=same_name_ok)
        log("save_comparison", made.id, {"name": made.name, **({"same_name": True} if same_name_ok else {})})
    return made


@audits_refusals
def update_comparison(actor: Actor, comparison_id: str, result_ids: list[str]) -> Comparison:
    with _change(actor, "save_comparison") as log:
        made = comparisons.update_results(comparison_id, result_ids, actor.name)
        log("update_comparison", comparison_id, {"result_ids": result_ids})
    return made


def may_update_comparison(actor: Actor, comparison: Comparison) -> bool:
    """Whether the Compare page offers actor "update to the newest results": only its author may
    (catalog.comparisons refuses anyone else; update_comparison checks the role)."""
    return comparison.created_by == actor.name


def may_delete_comparison(actor: Actor, comparison: Comparison) -> bool:
    """Whether the Compare page offers actor the delete button: its author, or an admin (the rule
    delete_comparison applies)."""
    return comparison.created_by == actor.name or actor.can("delete")


@audits_refusals
def delete_comparison(actor: Actor, comparison_id: str) -> None:
    """Its author may delete it, and an admin may delete anyone's; anyone else is refused (and
    the refusal audited), whatever the browser sends."""
    with _change(actor, "save_comparison") as log:
        saved = comparisons.get_comparison(comparison_id)
        if not may_delete_comparison(users.current(actor), saved):
            raise PermissionDeniedError(f"Only {saved.created_by}, who saved “{saved.name}”, or an admin can delete "
                                        "it; it stays shared.")
        comparisons.delete_comparison(comparison_id, saved.created_by)
        log("delete_comparison", comparison_id, {"owner": saved.created_by, "name": saved.name})


# --------------------------------------------------------------------------- settings and users

@audits_refusals
def save_settings(actor: Actor, settings: config.Settings) -> None:
    config.check_settings(settings)
    with _change(actor, "change_settings") as log:
        log("change_settings", None, {"settings": asdict(settings)})
        config.save_settings(settings)  # the file last: if the audit row failed, nothing changed


@audits_refusals
def add_user(actor: Actor, name: str, role: str, password: str | None) -> users.User:
    with _change(actor, "manage_users") as log:
        user = users.add_user(name, role, password)
        log("add_user", name, {"role": role})
    return user


@audits_refusals
def set_role(actor: Actor, name: str, role: str) -> None:
    if name == actor.name and role != "admin":
        raise PermissionDeniedError("You cannot take the admin role from yourself; ask another admin.")
    with _change(actor, "manage_users") as log:
        ended = users.set_role(name, role)
        log("set_role", name, {"role": role, "sessions_ended": ended})


@audits_refusals
def set_password(actor: Actor, name: str, password: str) -> None:
    """A user changes their own password; an admin may set anyone's. Their sessions end."""
    with _change(actor, "view" if users.current(actor).name == name else "manage_users") as log:
        ended = users.set_password(name, password)
        log("set_password", name, {"sessions_ended": ended})


@audits_refusals
def sign_out_user(actor: Actor, name: str) -> int:
    """An admin ends every open session of a user (a lost laptop, a copied cookie)."""
    from catalog import session_tokens

    with _change(actor, "manage_users") as log:
        ended = session_tokens.revoke_user(name, f"signed out by {actor.name}")
        log("sign_out_user", name, {"sessions_ended": ended})
    return ended
