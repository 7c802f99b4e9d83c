"""The gateway's side of catalog/remote_db.py: sessions on the machine that holds the catalog.

Each session is one thread inside `db.connect_file(write)`: it holds the catalog lock and the
transaction for as long as the remote caller's block lasts, runs the statements it is sent in
order, and commits when told to (or rolls back). A caller that goes silent (its machine died)
is rolled back after IDLE_S, and `abort_owner` rolls back at once the sessions of a job whose
worker is known to be gone, so a dead worker never keeps the catalog locked.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog import db

log = logging.getLogger(__name__)

IDLE_S = 60.0
ENDED = "This catalog session has ended (it was idle too long, or its job was stopped)."
METHODS = ("query", "one", "scalar", "execute", "executemany")


class _Rollback(Exception):
    """Raised inside a session's transaction to roll it back."""


@dataclass
class _Reply:
    value: Any = None
    error: BaseException | None = None


@dataclass
class _Session:
    owner: str
    write: bool
    requests: queue.Queue[tuple[str, str, Any] | bool] = field(default_factory=queue.Queue)
    replies: queue.Queue[_Reply] = field(default_factory=queue.Queue)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one request at a time
    closed: threading.Event = field(default_factory=threading.Event)

    def serve(self) -> None:
        """The session thread: open, answer statements, then commit (True) or roll back (False)."""
        try:
            with db.connect_file(self.write) as conn:
                self.replies.put(_Reply("open"))
                while True:
                    try:
                        request = self.requests.get(timeout=IDLE_S)
                    except queue.Empty:
                        log.warning("rolling back an idle catalog session of %s", self.owner)
                        raise _Rollback from None
                    if request is True:
                        break
                    if request is False:
                        raise _Rollback
                    method, sql, params = request  # type: ignore[misc]
                    try:
                        self.replies.put(_Reply(getattr(conn, method)(sql, params)))
                    except Exception as exc:  # noqa: BLE001 - the caller raises it; its block rolls back
                        self.replies.put(_Reply(error=exc))
            self.replies.put(_Reply("committed"))
        except _Rollback:
            self.replies.put(_Reply("rolled back"))
        except BaseException as exc:  # noqa: BLE001 - the lock could not be had, or the commit failed
            self.replies.put(_Reply(error=exc))
        finally:
            self.closed.set()

    def ask(self, request: tuple[str, str, Any] | bool) -> Any:
        with self.lock:
            if self.closed.is_set():
                raise LookupError(ENDED)
            self.requests.put(request)
            while True:
                try:
                    reply = self.replies.get(timeout=1.0)
                    break
                except queue.Empty:
                    if self.closed.is_set() and self.replies.empty():
                        raise LookupError(ENDED) from None
        if reply.error is not None:
            raise reply.error
        return reply.value


class SessionServer:
    """The sessions of every remote job, by id; thread-safe (the gateway serves calls concurrently)."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()

    def begin(self, owner: str, write: bool) -> str:
        session = _Session(owner, write)
        threading.Thread(target=session.serve, name=f"catalog-session-{owner}", daemon=True).start()
        reply = session.replies.get()  # waits for the catalog lock, as a local caller would
        if reply.error is not None:
            raise reply.error
        session_id = uuid.uuid4().hex
        with self.lock:
            self.sessions[session_id] = session
        return session_id

    def call(self, session_id: str, method: str, sql: str, params: Sequence[Any] | None) -> Any:
        if method not in METHODS:
            raise ValueError(f"unknown catalog method {method!r}")
        return self._session(session_id).ask((method, sql, params))

    def end(self, session_id: str, commit: bool) -> None:
        session = self._session(session_id)
        try:
            session.ask(commit)
        finally:
            with self.lock:
                self.sessions.pop(session_id, None)

    def abort_owner(self, owner: str) -> int:
        """Roll back every open session of `owner` (a job whose worker died); returns how many."""
        with self.lock:
            ids = [sid for sid, s in self.sessions.items() if s.owner == owner]
        for sid in ids:
            try:
                self.end(sid, commit=False)
            except Exception:  # noqa: BLE001 - it may have ended on its own meanwhile
                log.exception("could not roll back session %s of %s", sid, owner)
        return len(ids)

    def _session(self, session_id: str) -> _Session:
        with self.lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise LookupError(ENDED)
        return session
