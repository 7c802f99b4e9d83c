"""Moving model files into the data root safely: copies (reflinks where possible), hashing, path checks."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from catalog.errors import InvalidInputError

log = logging.getLogger(__name__)

CHUNK = 4 * 2**20
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"}
# Names become folder names and HTML; allow letters, digits and a few separators only.
NAME_MAX = 120
_NAME_OK = re.compile(rf"^[\w][\w .+()@,-]{{0,{NAME_MAX - 1}}}$")
_NAME_BAD_CHARS = re.compile(r"[^\w .+()@,-]+")

ProgressFn = Callable[[int, int], None]


def sha256_file(path: Path, progress: ProgressFn | None = None, done: int = 0, total: int = 0) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def validate_name(name: str) -> str:
    """A display name: no path separators, markup or quotes, at most NAME_MAX characters."""
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise InvalidInputError(f"The name starting {name[:24]!r} is {len(name):,} characters long; a name may "
                                f"have at most {NAME_MAX}.")
    if not _NAME_OK.match(name) or ".." in name:
        raise InvalidInputError(
            f"The name {name[:40]!r} is not allowed; use letters, digits, spaces and . _ - + ( ) @ only."
        )
    return name


def allowed_name(raw: str, fallback: str = "model") -> str:
    """A name read from a file or folder (a GGUF's general.name "meta-llama/Llama-3.2-1B-Instruct",
    a folder "digits [v2]") made allowed: each run of other characters becomes a space, ".." a
    single dot, and it is cut to NAME_MAX characters. The caller keeps the original."""
    try:
        return validate_name(raw)
    except InvalidInputError:
        pass
    name = _NAME_BAD_CHARS.sub(" ", raw or "")
    name = re.sub(r"\.{2,}", ".", re.sub(r"\s+", " ", name))
    name = re.sub(r"^\W+", "", name)[:NAME_MAX].strip()
    return name or fallback


def resolve_server_path(raw: str, allowed: list[Path], walk: bool = True) -> Path:
    """Resolve a server path and check that it lies inside an allowed root and (with walk) that
    it holds only regular files and folders."""
    if not raw or not raw.strip():
        raise InvalidInputError("Give a path on the server to import from.")
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        raise InvalidInputError(f"The path {raw!r} is relative; give an absolute path on the server.")
    if not path.exists():
        raise InvalidInputError(f"Nothing exists at {path}; check the path on the server.")
    real = path.resolve()
    if not (real.is_file() or real.is_dir()):  # a FIFO would block a reader; a device is no model
        raise InvalidInputError(f"{path} is neither a regular file nor a folder (it is a pipe, socket or "
                                "device); give the path of a model file or folder.")
    if not any(real == root or root in real.parents for root in allowed):
        roots = ", ".join(str(r) for r in allowed)
        raise InvalidInputError(
            f"{path} is outside the folders imports may read from ({roots}); "
            "ask an admin to add its folder to allowed_roots."
        )
    if walk:
        check_regular_tree(real)
    return real


# A model folder holds tens of files; a tree this large is a wrong path, and walking it under
# a user's request must stay bounded in time.
MAX_TREE_ENTRIES = 20_000


def check_regular_tree(path: Path) -> None:
    """Refuse a file or folder holding anything but regular files, folders and links to them: a
    FIFO blocks its reader forever, a device or socket is no model. Reads only metadata (lstat),
    never contents, and at most MAX_TREE_ENTRIES entries."""
    if path.is_dir():
        seen = 0
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            for name in dirnames + filenames:
                seen += 1
                if seen > MAX_TREE_ENTRIES:
                    raise InvalidInputError(f"{path} holds more than {MAX_TREE_ENTRIES:,} files and folders, "
                                            "which is no model folder; give the folder of one model.")
                _check_special(Path(dirpath) / name, path)
    else:
        _check_special(path, path.parent)


def _check_special(entry: Path, top: Path) -> None:
    try:
        mode = entry.stat().st_mode  # follows a link: what a reader would open
    except OSError:
        return  # a dangling link is refused (or skipped) by the folder checks
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "named pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        where = entry.relative_to(top) if entry != top else entry
        raise InvalidInputError(f"{where} is a {kind}, not a regular file, and reading it could block; "
                                "remove it from the folder or import a folder of regular files.")


def list_model_files(folder: Path) -> list[Path]:
    """Every regular file under folder, refusing symlinks that lead out of it."""
    root = folder.resolve()
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in list(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            real = path.resolve()
            if root != real and root not in real.parents:
                raise InvalidInputError(
                    f"{path.relative_to(folder)} is a link that leads out of the imported folder; "
                    "copy the real file into the folder instead."
                )
            if real.is_file() and not name.startswith("."):
                files.append(path)
    return sorted(files)


# ioctl FICLONE: share the source's blocks copy-on-write (Btrfs, XFS, bcachefs, ...).
_FICLONE = 0x40049409


def copy_file(src: Path, dest: Path) -> str:
    """Copy src to dest so that later changes to src never reach dest (a hard link would share
    them). A reflink where the file system supports it (instant, no extra space until either
    side changes), else a byte copy that keeps sparse holes. Returns "reflink" or "copy"."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    real = src.resolve()
    before = real.stat()
    with open(real, "rb") as fin, open(dest, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            method = "reflink"
        except OSError:
            _copy_bytes(fin.fileno(), fout.fileno(), before.st_size)
            method = "copy"
    after = real.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InvalidInputError(f"{src.name} changed while it was being copied; import it again once "
                                "nothing writes to it.")
    return method


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch of a file that holds data; holes of a sparse file are skipped."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # the file system cannot say: copy all of it
                yield offset, size
            return  # ENXIO: only a hole remains
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def _copy_bytes(fin: int, fout: int, size: int) -> None:
    for start, end in _data_extents(fin, size):
        offset = start
        while offset < end:
            try:  # in the kernel, and server-side on file systems that can
                n = os.copy_file_range(fin, fout, end - offset, offset, offset)
            except OSError:
                n = 0
            if n == 0:  # not supported between these files: read and write
                chunk = os.pread(fin, min(CHUNK, end - offset), offset)
                if not chunk:
                    break  # the file shrank; copy_file's size check says so
                n = os.pwrite(fout, chunk, offset)
            offset += n
    os.ftruncate(fout, size)  # a trailing hole stays a hole


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def hash_folder(folder: Path, progress: ProgressFn | None = None) -> list[tuple[str, int, str]]:
    """(relative path, size, sha256) for every file under folder, with byte-level progress."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    done = 0
    out = []
    for path in files:
        size = path.stat().st_size
        out.append((path.relative_to(folder).as_posix(), size, sha256_file(path, progress, done, total)))
        done += size
    return out


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def keep_by_content(folder: Path, data: bytes, suffix: str = "", prefix: str = "") -> Path:
    """folder/<prefix><first 16 hex digits of the sha256 of data><suffix>, written once.

    The name follows the bytes, so a file already there under it holds them and is left as it is
    (a page that hands the same upload over on every rerun writes nothing after the first). One of
    another size is a torn copy and is replaced. The bytes go to a temporary file first and are
    renamed into place, so no reader ever sees half of them."""
    path = folder / f"{prefix}{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
