"""Files uploaded in the browser for an import, staged in a folder of their own under the data
root's uploads (an allowed root, so the import checks them like any server path)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from catalog import config
from catalog.files import remove_tree, validate_name

UploadedFile = tuple[str, bytes]  # the name the browser gave, and the bytes


def stage_upload(files: list[UploadedFile], single_file: Callable[[Path], bool]) -> Path:
    """Write the files into a new folder under the uploads and return what to import: the one
    file itself when single_file says it is a model file on its own (the caller asks the
    toolkits, so no format is named here), else the folder. Every name is checked before anything
    is written. The import job removes the folder when it is done; discard removes it when the
    import is refused."""
    names = [validate_name(name) for name, _ in files]
    folder = config.uploads_dir() / secrets.token_hex(8)
    folder.mkdir(parents=True)
    for (_, data), name in zip(files, names, strict=True):
        (folder / name).write_bytes(data)
    if len(names) == 1 and single_file(folder / names[0]):
        return folder / names[0]
    return folder


def discard(target: Path) -> None:
    """Remove what stage_upload wrote for target (a refused upload leaves nothing behind)."""
    remove_tree(target.parent if target.is_file() else target)
