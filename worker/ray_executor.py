"""The Ray executor: each claimed job becomes a Ray task on a worker with the hardware it needs.

The supervisor stays on the catalog's machine (the head) and is the tasks' owner: it asks each
task for the resources worker/placement.py names, beats the job's heartbeat while the task waits
or runs (the lease of a job on another machine), writes why a job waits ("waiting for a worker
with apple_silicon") where the Jobs page shows progress, and records how a task ended: a worker
that died ends its job interrupted with the reason, and the gateway rolls back any transaction
the job had open. Cancel kills the task. Tasks are never retried by Ray (max_retries=0): a retry
is the user's, through the catalog, so every attempt is recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError, TaskCancelledError

from catalog import config, jobfiles, jobs
from catalog.records import Job
from worker import placement
from worker.ray_gateway import NAMESPACE, GatewayAddress, gateway_name, start_gateway
from worker.ray_task import run_job_on_worker

log = logging.getLogger(__name__)

RUNNER = jobs.CLUSTER_RUNNER_PREFIX + "ray"
HEARTBEAT_S = 2.0
WAITING_CHECK_S = 3.0
STOPPED_STATES = ("cancelled", "interrupted")


@dataclass
class Task:
    job_id: str
    ref: Any
    placement: placement.Placement
    submitted: float = field(default_factory=time.monotonic)
    said: str = ""  # the waiting reason last written


def connect(address: str) -> None:
    """Join the cluster as a driver attached to this machine's node (the head, in a loopback test)."""
    if ray.is_initialized():
        return
    host = address.rsplit(":", 1)[0]
    kwargs: dict[str, Any] = {"_node_ip_address": host} if host.startswith("127.") else {}
    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING, **kwargs)


_task_function: Any = None


def _remote_function() -> Any:
    global _task_function
    if _task_function is None:
        _task_function = ray.remote(run_job_on_worker)
    return _task_function


class RayExecutor:
    runner = RUNNER

    def __init__(self, address: str) -> None:
        self.address = address
        connect(address)
        self.data_root = str(config.data_root())
        self.gateway = start_gateway(self.data_root)
        self.tasks: dict[str, Task] = {}
        self.last_beat = 0.0
        self.last_waiting_check = 0.0
        log.info("running jobs on the Ray cluster at %s", address)

    def _remote_env(self) -> dict[str, str]:
        from worker.proc import child_environment

        env = child_environment()
        return {k: env[k] for k in (config.ROOT_ENV, "PYTHONPATH", *config.offline_environment()) if k in env}

    def start(self, job: Job) -> None:
        where = placement.for_job(job, ray.cluster_resources())
        gateway = {"cluster": self.address, "name": gateway_name(self.data_root), "owner": job.id}
        GatewayAddress(**gateway)  # the fields the task's process expects
        task = _remote_function().options(
            num_cpus=1, resources=where.resources, max_retries=0, name=f"model-catalog {job.kind} {job.id}",
            runtime_env={"env_vars": self._remote_env()},
        )
        self.tasks[job.id] = Task(job.id, task.remote(job.id, gateway, where.resource), where)
        jobfiles.append_log(job.id, f"[{time.strftime('%H:%M:%S')}] submitted to the Ray cluster at "
                                    f"{self.address}, asking for {where.resource}")
        self._say_why_waiting(self.tasks[job.id], ray.cluster_resources())

    def reap(self) -> bool:
        if not self.tasks:
            return False
        refs = {t.ref: t for t in self.tasks.values()}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in done:
            task = refs[ref]
            del self.tasks[task.job_id]
            self._record_end(task)
        return bool(done)

    def _record_end(self, task: Task) -> None:
        try:
            outcome = ray.get(task.ref)
            log.info("job %s ended on %s with exit status %s", task.job_id, outcome["node_ip"],
                     outcome["returncode"])
            return
        except TaskCancelledError:
            reason = "Its Ray task was cancelled."
        except RayError as exc:
            node = jobfiles.read_node(task.job_id)
            where = f"The Ray worker {node['node_ip']} ({node['hostname']})" if node else "The Ray worker"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = (f"{where} that ran it stopped before the job ended ({type(exc).__name__}: "
                      f"{first[:200]}); retry it.")
        rolled_back = ray.get(self.gateway.abort_owner.remote(task.job_id))
        if rolled_back:
            jobfiles.append_log(task.job_id, f"rolled back {rolled_back} open catalog transaction(s)")
        if jobs.interrupt(task.job_id, reason):
            log.warning("job %s: %s", task.job_id, reason)

    def tick(self) -> None:
        now = time.monotonic()
        if self.tasks and now - self.last_beat >= HEARTBEAT_S:
            self.last_beat = now
            for job_id in self.tasks:
                jobfiles.touch_heartbeat(job_id)  # the lease: this owner still holds the task
        if self.tasks and now - self.last_waiting_check >= WAITING_CHECK_S:
            self.last_waiting_check = now
            cluster = ray.cluster_resources()
            for task in self.tasks.values():
                self._say_why_waiting(task, cluster)

    def _say_why_waiting(self, task: Task, cluster: dict[str, float]) -> None:
        if jobfiles.read_node(task.job_id) is not None:
            return  # it has started on a worker
        reason = task.placement.waiting_reason(cluster)
        if reason != task.said:
            task.said = reason
            jobfiles.write_progress(task.job_id, 0.0, reason)
            jobfiles.append_log(task.job_id, f"[{time.strftime('%H:%M:%S')}] {reason}")

    def sync(self) -> None:
        for job_id, task in list(self.tasks.items()):
            job = jobs.find_job(job_id)
            # Ended by a user or by reconcile; a job that recorded its own outcome ends its task itself.
            if job is None or job.state in STOPPED_STATES:
                log.info("job %s is %s: cancelling its Ray task", job_id, job.state if job else "gone")
                ray.cancel(task.ref, force=True)

    def shutdown(self) -> None:
        for task in self.tasks.values():
            ray.cancel(task.ref, force=True)
        for task in self.tasks.values():
            jobs.interrupt(task.job_id, "The supervisor that owned its Ray task stopped; retry it.")
        self.tasks.clear()
        ray.shutdown()
