"""A Ray cluster on loopback addresses for tests and benchmarks: a head and workers, each with
its own temp dir, token authentication on and usage statistics off; stopping it stops exactly the
nodes it started (worker/ray_nodes.py), never `ray stop`."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

HEAD_IP = "127.0.0.2"  # never 127.0.0.1: Ray rewrites it to the network card's address


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.nodes: dict[str, Path] = {}
        self.address = ""

    def start_head(self, ip: str = HEAD_IP) -> None:
        from worker import ray_nodes

        self.address = ray_nodes.start_head(ip, free_port(ip), self._dir(ip))

    def add_worker(self, ip: str, resources: tuple[str, ...] = (), declare_machine: bool = True,
                   num_cpus: int = 2) -> None:
        from worker import ray_nodes

        ray_nodes.start_worker(self.address, ip, self._dir(ip), resources, num_cpus=num_cpus,
                               declare_machine=declare_machine)

    def _dir(self, ip: str) -> Path:
        self.nodes[ip] = self.base / ip.replace(".", "_")
        return self.nodes[ip]

    def kill(self, ip: str) -> int:
        from worker import ray_nodes

        return ray_nodes.stop_node(self.nodes[ip])

    def processes(self) -> list[psutil.Process]:
        from worker import ray_nodes

        return [p for d in self.nodes.values() for p in ray_nodes.node_processes(d)]

    def stop(self) -> list[psutil.Process]:
        """Stop every node this cluster started; what is left (nothing, normally) is returned."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for ip in list(self.nodes):
            self.kill(ip)
        return self.processes()


@contextmanager
def token_environment(base: Path) -> Iterator[Path]:
    """RAY_AUTH_MODE=token with a fresh token file, usage statistics off, for this process and the
    nodes it starts; the environment is restored afterwards."""
    token = base / "token"
    token.write_text(secrets.token_hex(32))
    values = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield token
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
