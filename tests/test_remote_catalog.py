"""The catalog reached through a gateway (what a job on a Ray worker does), without Ray: a
transport that calls catalog/gateway.py's SessionServer in this process. Commits, rollbacks,
a dead worker's open session, duplicate rows and the job placement rules, in well under a second;
tests/test_ray_cluster.py runs the same code across real Ray nodes (scripts/test_ray).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from catalog import config, db, remote_db
from catalog.errors import ConflictError, InvalidInputError
from catalog.gateway import SessionServer
from worker import placement

ADD_USER = "INSERT INTO users (name, role, created_at) VALUES (?, 'viewer', now())"
COUNT_USERS = "SELECT count(*) FROM users WHERE name = ?"


class InProcessTransport:
    """remote_db.Transport straight into a SessionServer (the Ray actor's only job is to carry these calls)."""

    def __init__(self, server: SessionServer, owner: str) -> None:
        self.server = server
        self.owner = owner

    def begin(self, write: bool) -> str:
        return self.server.begin(self.owner, write)

    def call(self, session: str, method: str, sql: str, params: Sequence[Any] | None) -> Any:
        return self.server.call(session, method, sql, params)

    def end(self, session: str, commit: bool) -> None:
        self.server.end(session, commit)


@pytest.fixture
def server(root: Path) -> SessionServer:
    with db.connect():  # the schema exists before the first remote session
        pass
    return SessionServer()


@pytest.fixture
def remote(server: SessionServer) -> Iterator[InProcessTransport]:
    transport = InProcessTransport(server, "job-1")
    remote_db.install(transport)
    try:
        yield transport
    finally:
        remote_db.install(None)


def _users(name: str) -> int:
    """Counted through the file, as the head sees it."""
    installed = remote_db.installed()
    remote_db.install(None)
    try:
        with db.connect(write=False) as conn:
            return conn.scalar(COUNT_USERS, [name])
    finally:
        remote_db.install(installed)


def test_a_remote_block_commits_when_it_ends(remote: InProcessTransport) -> None:
    with db.connect() as conn:
        assert isinstance(conn, remote_db.RemoteDatabase)
        conn.execute(ADD_USER, ["ana"])
        assert conn.scalar(COUNT_USERS, ["ana"]) == 1  # its own writes, inside the transaction
    assert _users("ana") == 1
    assert remote.server.sessions == {}


def test_an_error_in_the_block_rolls_everything_back(remote: InProcessTransport) -> None:
    with pytest.raises(RuntimeError, match="smoke test failed"), db.connect() as conn:
        conn.execute(ADD_USER, ["bo"])
        raise RuntimeError("smoke test failed")
    assert _users("bo") == 0


def test_a_duplicate_row_is_the_catalogs_conflict_error(remote: InProcessTransport) -> None:
    with db.connect() as conn:
        conn.execute(ADD_USER, ["cy"])
    with pytest.raises(ConflictError), db.connect() as conn:
        conn.execute(ADD_USER, ["cy"])
    assert _users("cy") == 1


def test_a_dead_workers_session_is_rolled_back_and_frees_the_catalog(server: SessionServer) -> None:
    """The worker began a write and died: abort_owner rolls it back, and the next writer gets in."""
    session = server.begin("job-dead", write=True)
    server.call(session, "execute", ADD_USER, ["dee"])
    assert server.abort_owner("job-dead") == 1
    with pytest.raises(LookupError, match="has ended"):
        server.call(session, "scalar", COUNT_USERS, ["dee"])
    done = threading.Event()

    def write_locally() -> None:
        with db.connect() as conn:
            conn.execute(ADD_USER, ["eve"])
        done.set()

    threading.Thread(target=write_locally, daemon=True).start()
    assert done.wait(30), "the catalog stayed locked after the dead worker's session was rolled back"
    assert _users("dee") == 0 and _users("eve") == 1


def test_the_gateway_runs_only_the_database_calls(server: SessionServer) -> None:
    session = server.begin("job-2", write=False)
    try:
        with pytest.raises(ValueError, match="unknown catalog method"):
            server.call(session, "close", "", None)
    finally:
        server.end(session, commit=False)


# ----------------------------------------------------------------------------------- placement

def test_a_benchmark_prefers_the_accelerator_a_worker_has() -> None:
    cluster = {"cpu_x86": 4.0, "apple_silicon": 1.0}
    assert placement.choose(["apple-metal", "cpu"], cluster, cpu_fallback=True) == "apple_silicon"
    assert placement.choose(["apple-metal", "cpu"], {"cpu_x86": 4.0}, cpu_fallback=True) == "cpu_x86"


def test_a_target_no_worker_has_waits_and_says_why() -> None:
    resource = placement.choose(["qnn-htp"], {"cpu_x86": 4.0}, cpu_fallback=False)
    assert resource == "qnn_htp"
    reason = placement.Placement(resource, placement.SLOTS).waiting_reason({"cpu_x86": 4.0})
    assert reason.startswith("waiting for a worker with qnn_htp")
    assert placement.Placement("cpu_x86", 1).waiting_reason({"cpu_x86": 4.0}).startswith(
        "waiting for a catalog worker")


def test_a_benchmark_takes_the_whole_worker_and_a_conversion_one_slot() -> None:
    assert placement.Placement("cpu_x86", placement.SLOTS).resources[placement.SLOT_RESOURCE] == placement.SLOTS
    assert placement.Placement("cpu_x86", 1).resources[placement.SLOT_RESOURCE] == 1


@pytest.mark.parametrize(("executor", "address", "message"), [
    ("slurm", "", "executor must be one of local, ray"),
    ("ray", "", "needs ray_address"),
])
def test_the_executor_setting_is_checked(executor: str, address: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        config.check_settings(config.Settings(executor=executor, ray_address=address))
    config.check_settings(config.Settings(executor="ray", ray_address="10.0.0.5:6379"))
