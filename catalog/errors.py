"""Errors the catalog raises. Each message is one sentence a user can act on."""

import errno

# What to do about the file-system errors a user can meet when the catalog writes where they asked.
_OS_ADVICE = {
    errno.EROFS: "is on a read-only file system; choose a folder this user can write to",
    errno.EACCES: "cannot be written by this user; choose a folder this user can write to",
    errno.EPERM: "cannot be written by this user; choose a folder this user can write to",
    errno.ENOSPC: "is on a full disk; free space there or choose another folder",
    errno.EDQUOT: "is over this user's disk quota; free space there or choose another folder",
}


class CatalogError(Exception):
    """Base class: the message says what is wrong and what to do."""


class NotFoundError(CatalogError):
    pass


class InvalidInputError(CatalogError):
    pass


class ConflictError(CatalogError):
    """The request clashes with the catalog's state (a running job, an existing name)."""


class PermissionDeniedError(CatalogError):
    """The acting user's role does not allow the action."""


class CatalogBusyError(CatalogError):
    pass


class ReadOnlyRootError(CatalogError):
    """The data root cannot be written (a read-only mount or no permission): browsing only."""


def os_error_sentence(exc: OSError) -> str | None:
    """One sentence for a file-system error a user can fix (a read-only folder, no permission, a
    full disk), naming the path instead of "[Errno 30] Read-only file system"; None for others."""
    advice = _OS_ADVICE.get(exc.errno or 0)
    if advice is None:
        return None
    where = exc.filename or "The folder"
    return f"{where} {advice}."
