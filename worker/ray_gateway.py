"""The catalog gateway on Ray: an actor on the head serves catalog/gateway.py's sessions, and a
job process on a worker reaches it through `RayTransport` (catalog/remote_db.py).

The actor is owned by the supervisor that made it and placed on the supervisor's own node,
where the catalog is: it dies with the supervisor, and no job can then write. Errors travel as
values, not as Ray task errors, so a caller raises the catalog's own exception (a ConflictError
stays a ConflictError).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import ray

from catalog import config, remote_db
from catalog.gateway import SessionServer

log = logging.getLogger(__name__)

GATEWAY_ENV = remote_db.GATEWAY_ENV
NAMESPACE = "model_catalog"


@dataclass(frozen=True)
class GatewayAddress:
    """How a job process finds the gateway; handed to it as JSON in GATEWAY_ENV."""

    cluster: str      # the Ray cluster's address, host:port
    name: str         # the actor's name in NAMESPACE
    owner: str        # the job whose sessions these are
    node_ip: str = ""  # the worker's own address, so the process attaches to its own node

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text: str) -> GatewayAddress:
        return cls(**json.loads(text))


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class CatalogGateway:
    """The actor's class (wrapped by ray.remote in `start_gateway`)."""

    def __init__(self, data_root: str) -> None:
        config.set_data_root(data_root)
        config.apply_offline_environment()
        self.server = SessionServer()

    def _answer(self, fn: Any, *args: Any) -> tuple[bool, Any]:
        try:
            return True, fn(*args)
        except Exception as exc:  # noqa: BLE001 - sent back, raised by the caller
            return False, _portable(exc)

    def begin(self, owner: str, write: bool) -> tuple[bool, Any]:
        return self._answer(self.server.begin, owner, write)

    def call(self, session: str, method: str, sql: str, params: Sequence[Any] | None) -> tuple[bool, Any]:
        return self._answer(self.server.call, session, method, sql, params)

    def end(self, session: str, commit: bool) -> tuple[bool, Any]:
        return self._answer(self.server.end, session, commit)

    def abort_owner(self, owner: str) -> int:
        return self.server.abort_owner(owner)

    def ping(self) -> str:
        return str(config.data_root())


def gateway_name(data_root: str) -> str:
    import hashlib

    return "catalog-gateway-" + hashlib.sha256(data_root.encode()).hexdigest()[:12]


def start_gateway(data_root: str) -> Any:
    """Start the gateway on this driver's node (the catalog's machine); returns its handle."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor_class = ray.remote(CatalogGateway)
    handle = actor_class.options(
        name=gateway_name(data_root), namespace=NAMESPACE, num_cpus=0, max_concurrency=64,
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
        runtime_env={"env_vars": {config.ROOT_ENV: data_root, "PYTHONPATH": str(config.PROJECT_DIR)}},
    ).remote(data_root)
    ray.get(handle.ping.remote())  # it is up (and holds no catalog lock) before any job starts
    return handle


def _unwrap(answer: tuple[bool, Any]) -> Any:
    ok, value = answer
    if not ok:
        raise value
    return value


class RayTransport:
    """remote_db.Transport over the gateway actor."""

    def __init__(self, actor: Any, owner: str) -> None:
        self.actor = actor
        self.owner = owner

    def begin(self, write: bool) -> str:
        return _unwrap(ray.get(self.actor.begin.remote(self.owner, write)))

    def call(self, session: str, method: str, sql: str, params: Sequence[Any] | None) -> Any:
        return _unwrap(ray.get(self.actor.call.remote(session, method, sql, params)))

    def end(self, session: str, commit: bool) -> None:
        _unwrap(ray.get(self.actor.end.remote(session, commit)))


def connect_from_environment() -> bool:
    """In a job process started by the Ray executor: reach the catalog through the gateway named
    in GATEWAY_ENV. Returns False (nothing changed) when the variable is not set."""
    text = os.environ.get(GATEWAY_ENV)
    if not text:
        return False
    address = GatewayAddress.from_env(text)
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"_node_ip_address": address.node_ip} if address.node_ip else {}
        ray.init(address=address.cluster, namespace=NAMESPACE, log_to_driver=False,
                 logging_level=logging.WARNING, **kwargs)
    actor = ray.get_actor(address.name, namespace=NAMESPACE)
    remote_db.install(RayTransport(actor, address.owner))
    return True
