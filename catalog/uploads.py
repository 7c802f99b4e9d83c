"""Files uploaded in the browser for an import, staged in a folder of their own under the data
root's uploads (an allowed root, so the import checks them like any server path).

Each user's uploads sit in a folder of their own, and a path typed into a form may name only the
typing user's: an upload's path (shown in job logs) is not a way to read someone else's file."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

from catalog import config
from catalog.errors import InvalidInputError, PermissionDeniedError
from catalog.files import remove_tree, validate_name

UploadedFile = tuple[str, bytes]  # the name the browser gave, and the bytes
OWNER_PREFIX = "u-"  # an owner's folder: this prefix and a hash of the user name


def owner_dir(owner: str | None = None) -> Path:
    """The folder of one user's uploads (None: the server's shell user, as in the CLI and with
    auth off). Named by a hash, so any user name makes a safe folder name."""
    name = owner or config.local_user()
    return config.uploads_dir() / f"{OWNER_PREFIX}{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def stage_upload(files: list[UploadedFile], single_file: Callable[[Path], bool], owner: str | None = None) -> Path:
    """Write the files into a new folder under the owner's uploads and return what to import: the
    one file itself when single_file says it is a model file on its own (the caller asks the
    toolkits, so no format is named here), else the folder. Every name and the total size are
    checked before anything is written. The import job removes the folder when it is done;
    discard removes it when the import is refused."""
    names = [validate_name(name) for name, _ in files]
    check_size(sum(len(data) for _, data in files))
    folder = owner_dir(owner) / secrets.token_hex(8)
    folder.mkdir(parents=True)
    for (_, data), name in zip(files, names, strict=True):
        (folder / name).write_bytes(data)
    if len(names) == 1 and single_file(folder / names[0]):
        return folder / names[0]
    return folder


def check_size(size: int) -> None:
    limit_mb = config.load_settings().max_upload_mb
    if size > limit_mb * 2**20:
        raise InvalidInputError(f"The upload is {size / 2**20:,.1f} MB, over the {limit_mb} MB limit for uploads; "
                                "copy the model into the inbox on the server and import it by path.")


def check_not_anothers(value: str | None, owner: str) -> None:
    """Refuse a path into another user's uploads (or into the uploads' shared top level)."""
    if not value:
        return
    uploads = config.uploads_dir().resolve()
    path = Path(value).expanduser().resolve()
    if path.is_relative_to(uploads) and not path.is_relative_to(owner_dir(owner).resolve()):
        raise PermissionDeniedError(f"{value} is another user's upload; upload the file yourself, or ask an admin "
                                    "to place it in the inbox.")


def discard(target: Path) -> None:
    """Remove what stage_upload wrote for target (a refused upload leaves nothing behind)."""
    remove_tree(target.parent if target.is_file() else target)
