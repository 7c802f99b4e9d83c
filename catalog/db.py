"""Short-lived DuckDB connections shared safely by the app, the CLI and job processes.

DuckDB lets one process at a time open a database file for writing. Every access therefore
takes an exclusive advisory lock on `<root>/catalog.lock`, opens the file, does its work and
closes it again. Waiters block on the lock instead of seeing DuckDB's lock error, and no
process holds the database open between operations (the app never keeps one across a rerun).
"Opens" is an ATTACH to one in-memory DuckDB kept per process, "closes" a DETACH (see _Host).

A data root this process cannot write (a read-only mount, another user's folder) is opened
read-only under a shared lock: browsing works, and any write says in one sentence that the data
root is read-only.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from catalog import config, remote_db
from catalog.database import Database
from catalog.errors import CatalogBusyError, ConflictError, ReadOnlyRootError
from catalog.migrations import MIGRATIONS, migrate

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 120.0
DUPLICATE_SENTENCE = ("The catalog already holds what this tried to record (someone recorded it at the same "
                      "moment), so nothing was changed; look again, and retry if it is still missing.")
# Nested use inside one thread reuses the open connection instead of deadlocking on the lock.
_local = threading.local()
_migrated: set[str] = set()


@contextmanager
def _file_lock(timeout_s: float, shared: bool = False) -> Iterator[None]:
    """The catalog lock: exclusive, or shared for a reader of a read-only data root (which cannot
    create the lock file: where there is none, no writer uses this catalog)."""
    path = config.data_root() / "catalog.lock"
    try:
        fd = os.open(path, os.O_RDONLY) if shared else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        if not shared:
            raise
        yield
        return
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CatalogBusyError(
                        "The catalog stayed busy for too long; try again in a moment."
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class _Host:
    """One in-memory DuckDB per process, to which each unit of work ATTACHes the catalog file and
    DETACHes it at the end. A new DuckDB instance costs about 25 ms (it builds its catalog of
    built-in functions) and a page load opens the catalog several times; ATTACH + DETACH take
    about 5 ms, and the file is closed, its lock released, just as with a closed connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instance: duckdb.DuckDBPyConnection | None = None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's instance is kept, never used and never destroyed (its
        threads stayed in the parent, and destroying it here crashed the child), and the lock is new."""
        if self._instance is not None:
            _INHERITED.append(self._instance)
        self._instance = None
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._instance is None:  # a forked child starts from None (forget_after_fork)
                # An in-memory instance would spill a large sort to ./.tmp, wherever the process runs.
                spill = Path(tempfile.gettempdir()) / f"model-catalog-duckdb-{os.getuid()}"
                self._instance = duckdb.connect(":memory:", config={"temp_directory": str(spill)})
            return self._instance.cursor()


_INHERITED: list[duckdb.DuckDBPyConnection] = []
_host = _Host()
os.register_at_fork(after_in_child=_host.forget_after_fork)


def _attach(path: str, read_only: bool = False) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A connection whose default database is the catalog file, and the file's alias in it
    (both handed to _detach at the end)."""
    cursor = _host.cursor()
    alias = f"catalog_{uuid.uuid4().hex[:12]}"
    try:
        cursor.execute(f"ATTACH '{_sql_path(path)}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
        cursor.execute(f"USE {alias}")
    except BaseException:
        cursor.close()
        raise
    return cursor, alias


def _detach(con: duckdb.DuckDBPyConnection, alias: str) -> None:
    try:
        con.execute("USE memory")
        con.execute(f"DETACH {alias}")
    finally:
        con.close()


def _sql_path(path: str) -> str:
    return path.replace("'", "''")


def _open_duckdb(path: str) -> tuple[duckdb.DuckDBPyConnection, str]:
    # The file lock serialises our own processes; the retry covers anything else holding it.
    for attempt in range(50):
        try:
            return _attach(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == 49:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def read_only_root() -> bool:
    """Whether this process cannot write to the data root (a read-only mount, or no permission)."""
    return not os.access(config.data_root(), os.W_OK)


def read_only_sentence() -> str:
    return (f"The data root {config.data_root()} is read-only, so nothing can be changed in it; browse it, or "
            "give --data-root (or MODEL_CATALOG_HOME) a folder this user can write to.")


@contextmanager
def _read_only(path: str) -> Iterator[Database]:
    """The catalog of a read-only data root, opened read-only under a shared lock."""
    with _file_lock(LOCK_TIMEOUT_S, shared=True):
        try:
            con, alias = _attach(path, read_only=True)
        except duckdb.IOException as exc:
            log.info("could not open %s read-only: %s", path, exc)
            raise ReadOnlyRootError(f"The data root {config.data_root()} is read-only and holds no catalog "
                                    "that can be opened; give --data-root a folder with a catalog.") from None
        db = Database(con)
        _local.db = db
        try:
            _check_schema(db)
            yield db
        except duckdb.Error as exc:  # a write through a reading connection
            if "read-only" not in str(exc):
                raise
            raise ReadOnlyRootError(read_only_sentence()) from None
        finally:
            _local.db = None
            _detach(con, alias)


def _check_schema(db: Database) -> None:
    """A read-only catalog cannot be upgraded: refuse one that an older version wrote."""
    try:
        done = {r["name"] for r in db.query("SELECT name FROM schema_migrations")}
    except duckdb.CatalogException:
        done = set()
    if any(name not in done for name, _ in MIGRATIONS):
        raise ReadOnlyRootError(f"The catalog in {config.data_root()} was made by an older version and needs an "
                                "upgrade, but its data root is read-only; open it once with write access.")


@contextmanager
def connect(write: bool = True) -> Iterator[Database]:
    """Open the catalog for one unit of work; it is a transaction when `write` is true."""
    current: Database | None = getattr(_local, "db", None)
    if current is not None:
        yield current
        return
    transport = remote_db.installed()
    if transport is not None:
        with _remote(transport, write) as remote:
            yield remote
        return
    with connect_file(write) as db:
        yield db


@contextmanager
def connect_file(write: bool = True) -> Iterator[Database]:
    """connect() on this machine's file, whatever transport is installed: the gateway's sessions
    (catalog/gateway.py) are the file's side of a remote job's connect()."""
    path = str(config.db_path())
    if read_only_root():
        if write:
            raise ReadOnlyRootError(read_only_sentence())
        with _read_only(path) as db:
            yield db
        return
    with _file_lock(LOCK_TIMEOUT_S):
        before = _file_stamp() if write else ""
        con, alias = _open_duckdb(path)
        db = Database(con)
        _local.db = db
        try:
            if path not in _migrated:
                migrate(db)
                _migrated.add(path)
            if write:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield db
                except duckdb.ConstraintException as exc:  # never "ConstraintException: Duplicate key ..."
                    con.execute("ROLLBACK")
                    log.warning("rolled back a write that broke a constraint: %s", exc)
                    raise ConflictError(DUPLICATE_SENTENCE) from exc
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            else:
                yield db
        finally:
            _local.db = None
            _detach(con, alias)
            # Still under the lock, after the commit: readers' caches keyed by version() move on.
            if write and _file_stamp() != before:
                _bump_version()


@contextmanager
def _remote(transport: remote_db.Transport, write: bool) -> Iterator[Database]:
    """A job on another machine: the gateway where the catalog is holds the lock and the
    transaction; this side commits or rolls back as the local branch does."""
    session = transport.begin(write)
    remote = remote_db.RemoteDatabase(transport, session)
    _local.db = remote
    try:
        yield remote
    except duckdb.ConstraintException as exc:
        transport.end(session, commit=False)
        raise ConflictError(DUPLICATE_SENTENCE) from exc
    except BaseException:
        transport.end(session, commit=False)
        raise
    else:
        transport.end(session, commit=True)
    finally:
        _local.db = None


def _version_path() -> Path:
    return config.data_root() / "catalog.version"


def _file_stamp() -> str:
    """The catalog file's and its write-ahead log's mtime and size: a committed write changes them
    (DuckDB checkpoints when the last connection closes); reads and empty transactions do not."""
    parts = []
    for path in (config.db_path(), config.db_path().with_name(config.db_path().name + ".wal")):
        try:
            st = path.stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "/".join(parts)


def _bump_version() -> None:
    try:
        _version_path().write_text(uuid.uuid4().hex)
    except OSError as exc:  # a cache then only misses the token: the file stamp still moves
        log.warning("could not record the catalog's new version: %s", exc)


def version() -> str:
    """A key that changes whenever any process commits a change to the catalog (no lock, no
    connection: a few stat calls). Pages key their cached reads on it (ui.cached)."""
    try:
        token = _version_path().read_text()
    except OSError:
        token = ""
    return f"{config.data_root()}/{token}/{_file_stamp()}"


def reset_migration_cache() -> None:
    """Forget which files were migrated (tests swap data roots)."""
    _migrated.clear()
