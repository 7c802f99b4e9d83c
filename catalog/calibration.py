"""Calibration data a conversion reads (the text of an importance matrix, the sentences or images
of a static INT8 quantization).

A calibration file given by path is checked like a model path (inside allowed_roots or the data
root's uploads, a regular file) and against a size limit. One uploaded in the browser is first
saved under the uploads by its content (save_upload), and from there takes the same way, so an
upload and a path to the same bytes end in the same copy. Its copy in `<root>/calibration/`, named
by its content hash so that a recipe follows the bytes, is made only when a conversion is
submitted, never by a plan or a pre-flight check (`--check`), and is removed again when the last
job that could use it failed or was cancelled and no variant was made from it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from catalog import config, db, uploads
from catalog.errors import InvalidInputError
from catalog.files import CHUNK, keep_by_content, resolve_server_path, sha256_file

log = logging.getLogger(__name__)

SHIPPED = "shipped"
FOLDER = "calibration"
UPLOAD_PREFIX = "calibration-"  # an upload's name in the uploads folder, before its content hash
DEFAULT_UPLOAD_SUFFIX = ".txt"  # an upload whose name has no suffix is read as text
# Job states whose recipe no longer needs its calibration copy (a retry finds it gone and says so).
RELEASED_STATES = ("failed", "cancelled")


def folder() -> Path:
    """Where submitted calibration files are kept (not created here)."""
    return config.data_root() / FOLDER


def _is_kept(path: Path) -> bool:
    return path.is_absolute() and path.resolve().parent == folder()


def checked_file(value: str) -> Path | None:
    """None for the shipped data; else the calibration file, refused in one sentence when it is
    missing, outside the folders imports may read, not a regular file, or over the size limit."""
    if not value or value == SHIPPED:
        return None
    path = Path(value)
    if _is_kept(path):  # a copy this catalog made at submit time
        if not path.is_file():
            raise InvalidInputError(f"The calibration file {path.name} does not exist any more (the job that "
                                    "used it failed); give the calibration file again.")
        return path
    path = resolve_server_path(value, config.load_settings().allowed_paths)
    if not path.is_file():
        raise InvalidInputError(f"{path} is a folder; give a calibration file.")
    _check_size(path)
    return path


def _check_size(path: Path) -> None:
    limit_mb = config.load_settings().max_calibration_mb
    size = path.stat().st_size
    if size > limit_mb * 2**20:
        raise InvalidInputError(
            f"The calibration file {path.name} is {size / 2**20:,.1f} MB, over the {limit_mb} MB limit for "
            "calibration data; use an excerpt (an admin can raise max_calibration_mb in the data root's "
            "config.json).")


def _upload_suffix(name: str) -> str:
    return Path(name).suffix.lower() or DEFAULT_UPLOAD_SUFFIX


def save_upload(name: str, data: bytes, owner: str | None = None) -> Path:
    """An uploaded calibration file, saved in its owner's uploads under its content hash with the
    suffix of its name (lower case; .txt without one), ready to be given as a calibration path.
    Saving the same bytes again writes nothing."""
    folder = uploads.owner_dir(owner)
    folder.mkdir(parents=True, exist_ok=True)
    return keep_by_content(folder, data, suffix=_upload_suffix(name), prefix=UPLOAD_PREFIX)


@contextmanager
def checked_upload(name: str, data: bytes, owner: str | None = None) -> Iterator[Path]:
    """An uploaded calibration file as a path for a pre-flight check or a plan, leaving nothing
    behind: the copy save_upload made of the same bytes if there is one, else a scratch copy in
    the owner's uploads (where checked_file reads it like the saved one, under the same suffix, so
    the plan names the same kept copy and variant ids), removed on exit."""
    suffix = _upload_suffix(name)
    saved = uploads.owner_dir(owner) / f"{UPLOAD_PREFIX}{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if saved.is_file() and saved.stat().st_size == len(data):
        yield saved
        return
    folder = uploads.owner_dir(owner)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".check-", dir=folder) as scratch:
        path = Path(scratch) / saved.name
        path.write_bytes(data)
        yield path


def kept_path(path: Path, suffix: str | None = None) -> Path:
    """Where `keep` puts path: its content hash (first 16 hex digits) and path's suffix unless
    another is given. Reads the file, writes nothing."""
    return folder() / f"{sha256_file(path)[:16]}{path.suffix if suffix is None else suffix}"


def keep(original: str | None, planned: list[str]) -> list[Path]:
    """Copy the calibration file a conversion was given to each kept path its plan names that is
    not there yet; returns the copies made. Call under the catalog lock, with the jobs' rows
    written in the same transaction, so that a failing job's cleanup never sees a copy without
    the job that needs it."""
    if not original or original == SHIPPED:
        return []
    made: list[Path] = []
    for value in dict.fromkeys(planned):
        target = Path(value)
        if not value or value == SHIPPED or not _is_kept(target) or target.exists():
            continue
        source = Path(original)
        if kept_path(source, target.suffix) != target:
            raise InvalidInputError(f"The calibration file {source.name} changed while the conversion was "
                                    "planned; submit it again.")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with open(source, "rb") as fin, open(partial, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
        partial.replace(target)
        made.append(target)
    return made


def release(conn: db.Database) -> list[str]:
    """Remove kept calibration files that no variant's options and no job that may still run (or
    ran) names: those of jobs that failed or were cancelled. Returns the names removed."""
    where = folder()
    if not where.is_dir():
        return []
    removed = []
    for path in sorted(p for p in where.iterdir() if p.is_file() and not p.name.startswith(".")):
        pattern = f"%{path.name}%"
        used = conn.scalar(
            f"SELECT count(*) FROM jobs WHERE recipe LIKE ? AND state NOT IN {RELEASED_STATES}", [pattern]) \
            or conn.scalar("SELECT count(*) FROM variants WHERE options LIKE ?", [pattern])
        if not used:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.info("removed calibration copies no job or variant uses: %s", ", ".join(removed))
    return removed
