"""Starting and stopping the Ray nodes of a catalog cluster: a head, and workers that declare
the hardware they have (worker/placement.py's resources) and the catalog's slots.

    python -m worker.ray_nodes head   --ip 10.0.0.5 [--port 6379] [--temp-dir D]
    python -m worker.ray_nodes worker --address 10.0.0.5:6379 --ip 10.0.0.7 [--resource apple_silicon]
    python -m worker.ray_nodes stop   --temp-dir D

Token authentication stays on (Ray 2.60's default): every node and every process that joins
needs RAY_AUTH_MODE=token and the head's token, in RAY_AUTH_TOKEN or the file RAY_AUTH_TOKEN_PATH
names (`ray get-auth-token` prints it on the head). Usage statistics are off. Each node gets its
own temp dir, and `stop` kills exactly the processes of that node (never `ray stop`, which
stops every Ray process of the user).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import psutil

from worker.placement import SLOT_RESOURCE, SLOTS

log = logging.getLogger(__name__)

RAY = str(Path(sys.executable).with_name("ray"))


def ray_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "token")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def machine_resources() -> dict[str, float]:
    """What this machine declares: its CPU kind, and the catalog's slots."""
    arch = platform.machine().lower()
    found: dict[str, float] = {SLOT_RESOURCE: float(SLOTS)}
    if arch in ("x86_64", "amd64"):
        found["cpu_x86"] = 1.0
    if sys.platform == "darwin" and arch == "arm64":
        found["apple_silicon"] = 1.0
    return found


def _start(args: list[str], temp_dir: Path) -> None:
    temp_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([RAY, "start", *args, f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                          env=ray_environment(), capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"ray start failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def start_head(ip: str, port: int, temp_dir: Path) -> str:
    """A head that runs no job (0 CPUs); returns its address."""
    _start(["--head", f"--node-ip-address={ip}", f"--port={port}", "--num-cpus=0",
            "--include-dashboard=false", "--dashboard-host=" + ip], temp_dir)
    return f"{ip}:{port}"


def start_worker(address: str, ip: str, temp_dir: Path, extra: tuple[str, ...] = (),
                 num_cpus: int | None = None, declare_machine: bool = True) -> None:
    """A worker declaring this machine's resources plus `extra` ones (e.g. a stand-in accelerator)."""
    resources = machine_resources() if declare_machine else {SLOT_RESOURCE: float(SLOTS)}
    resources.update({name: 1.0 for name in extra})
    cpus = [f"--num-cpus={num_cpus}"] if num_cpus is not None else []
    _start([f"--address={address}", f"--node-ip-address={ip}", f"--resources={json.dumps(resources)}", *cpus],
           temp_dir)


def node_processes(temp_dir: Path) -> list[psutil.Process]:
    """The processes of the node started with this temp dir, with every descendant (its jobs)."""
    marker = re.compile(re.escape(str(temp_dir.resolve())) + r"(/|$)")
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid not in mine and any(marker.search(part) for part in proc.info["cmdline"] or []):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except psutil.Error:
            continue
    return list(found.values())


def stop_node(temp_dir: Path, timeout_s: float = 10.0) -> int:
    """Kill the node's processes (SIGKILL, as a machine that dies); returns how many there were."""
    procs = node_processes(temp_dir)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout_s)
    return len(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    head = sub.add_parser("head", help="start the head node (it runs no job)")
    head.add_argument("--ip", required=True)
    head.add_argument("--port", type=int, default=6379)
    worker = sub.add_parser("worker", help="start a worker that declares this machine's hardware")
    worker.add_argument("--address", required=True, help="the head's host:port")
    worker.add_argument("--ip", required=True, help="this machine's address the others reach")
    worker.add_argument("--resource", action="append", default=[], help="declare one more resource, e.g. qnn_htp")
    worker.add_argument("--num-cpus", type=int)
    stop = sub.add_parser("stop", help="stop the node started with --temp-dir")
    for p in (head, worker, stop):
        p.add_argument("--temp-dir", type=Path, default=Path("/tmp/model-catalog-ray"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "head":
        log.info("head at %s", start_head(args.ip, args.port, args.temp_dir))
    elif args.command == "worker":
        start_worker(args.address, args.ip, args.temp_dir, tuple(args.resource), args.num_cpus)
        log.info("worker %s joined %s", args.ip, args.address)
    else:
        log.info("stopped %d process(es)", stop_node(args.temp_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
