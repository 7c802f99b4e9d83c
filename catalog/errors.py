"""Errors the catalog raises. Each message is one sentence a user can act on."""


class CatalogError(Exception):
    """Base class: the message says what is wrong and what to do."""


class NotFoundError(CatalogError):
    pass


class InvalidInputError(CatalogError):
    pass


class ConflictError(CatalogError):
    """The request clashes with the catalog's state (a running job, an existing name)."""


class CatalogBusyError(CatalogError):
    pass


class ReadOnlyRootError(CatalogError):
    """The data root cannot be written (a read-only mount or no permission): browsing only."""
