"""The catalog reached through a gateway, for a job that runs on another machine.

A job on a cluster worker never opens the DuckDB file: the file may not be there, and DuckDB's
locking over a network filesystem is not safe. Once a process installs a transport (the Ray
executor's worker side does, worker/ray_gateway.py), db.connect() hands out a RemoteDatabase:
every statement goes to the gateway on the machine that holds the catalog (catalog/gateway.py),
which runs it in a session that holds the catalog lock and one transaction, exactly as
db.connect() does there, and commits or rolls back when the caller's block ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from catalog.database import Database

# Set by the Ray executor in a job process on a worker: where its gateway is (worker/ray_gateway.py).
GATEWAY_ENV = "MODEL_CATALOG_GATEWAY"

class Transport(Protocol):
    """How statements reach the gateway; each call returns what the gateway's call returned."""

    def begin(self, write: bool) -> str: ...

    def call(self, session: str, method: str, sql: str, params: Sequence[Any] | None) -> Any: ...

    def end(self, session: str, commit: bool) -> None: ...


_transport: Transport | None = None


def install(transport: Transport | None) -> None:
    """From now on, this process reaches the catalog through `transport` (None: the file again)."""
    global _transport
    _transport = transport


def installed() -> Transport | None:
    return _transport


class RemoteDatabase(Database):
    """The Database interface, each statement run by the gateway in this session."""

    def __init__(self, transport: Transport, session: str) -> None:
        super().__init__(None)  # type: ignore[arg-type] - no connection on this side
        self.transport = transport
        self.session = session

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        return self.transport.call(self.session, "query", sql, params)

    def one(self, sql: str, params: Sequence[Any] | None = None) -> dict[str, Any] | None:
        return self.transport.call(self.session, "one", sql, params)

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.transport.call(self.session, "scalar", sql, params)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.transport.call(self.session, "execute", sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.transport.call(self.session, "executemany", sql, rows)
