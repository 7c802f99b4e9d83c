"""One job on a Ray worker: what the supervisor's child process is on the local executor.

The task runs in a Ray worker process on the node its resources picked. It says where it runs
(the job log, and `jobs/<id>/node.json` that the Jobs page reads), starts `python -m worker.child`
there as the local supervisor would, waits for it, and records what the child could not record
itself (its death by a signal). Every catalog access, here and in the child, goes through the
gateway on the head (worker/ray_gateway.py); files go to the data root, which every worker
mounts at the same path.
"""

from __future__ import annotations

import os
import time
from typing import Any

import ray

from catalog import jobfiles, remote_db
from worker import crash, toolkits
from worker.ray_gateway import GATEWAY_ENV, NAMESPACE, GatewayAddress, RayTransport
from worker.spawn import spawn_child


def run_job_on_worker(job_id: str, gateway: dict[str, str], resource: str) -> dict[str, Any]:
    """The Ray task's body. Returns where it ran and the child's exit status."""
    context = ray.get_runtime_context()
    node = {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "hostname": os.uname().nodename, "pid": os.getpid(), "resource": resource,
            "started": time.time()}
    address = GatewayAddress(**dict(gateway, node_ip=node["node_ip"]))
    remote_db.install(RayTransport(ray.get_actor(address.name, namespace=NAMESPACE), job_id))
    try:
        jobfiles.write_node(job_id, node)
        jobfiles.append_log(job_id, f"[{time.strftime('%H:%M:%S')}] running on Ray worker {node['node_ip']} "
                                    f"({node['hostname']}, node {node['node_id'][:12]}, {resource})")
        jobfiles.write_progress(job_id, 0.0, f"starting on Ray worker {node['node_ip']}")
        oom_before = crash.oom_kill_count()
        child = spawn_child(job_id, {GATEWAY_ENV: address.to_env()})
        code = child.wait()
        crash.handle_child_exit(job_id, child.pid, code, oom_before, toolkits.facts())
        return dict(node, returncode=code)
    finally:
        remote_db.install(None)
