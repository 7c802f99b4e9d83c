"""Where a job may run on a cluster: the custom resources it asks the cluster's workers for.

Workers declare what they have when they join (worker/ray_nodes.py): `cpu_x86`,
`apple_silicon`, `qnn_htp`, `intel_gpu`, `nvidia_gpu`, and SLOTS of the catalog's own resource.
The toolkits name their execution targets ("cpu", "apple-metal", "qnn-htp", ...) in their
declarations; this module only maps those targets to resource names.

- A conversion runs where its declared target is when a worker has it, else on an x86 worker:
  every conversion runs there today (a QNN one on the HTP simulator).
- A benchmark measures on the first of its format's targets, preferring an accelerator a worker
  has; it falls back to the CPU only where the format runs on the CPU, and otherwise waits for
  a worker with its target. It takes all SLOTS of that worker: one benchmark at a time and
  nothing else beside it, so its speed figures stay honest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalog.records import Job

CPU_TARGET = "cpu"
# An execution target as the toolkits name it -> the resource a worker with it declares.
TARGET_RESOURCES = {
    "cpu": "cpu_x86",
    "apple-metal": "apple_silicon",
    "qnn-htp": "qnn_htp",
    "intel-gpu": "intel_gpu",
    "cuda": "nvidia_gpu",
}
SLOT_RESOURCE = "model_catalog_slots"
SLOTS = 100  # per worker: a conversion takes 1, a benchmark all of them


@dataclass(frozen=True)
class Placement:
    resource: str      # the hardware resource asked for, e.g. "apple_silicon"
    slots: int         # how much of the worker it takes

    @property
    def resources(self) -> dict[str, float]:
        return {self.resource: 0.001, SLOT_RESOURCE: float(self.slots)}

    def waiting_reason(self, cluster: Mapping[str, float]) -> str:
        """Why a job with this placement has not started, from the cluster's live totals."""
        if cluster.get(self.resource, 0) <= 0:
            return (f"waiting for a worker with {self.resource}: no worker in the cluster declares it "
                    "(start one with that resource, see the README)")
        if cluster.get(SLOT_RESOURCE, 0) <= 0:
            return "waiting for a catalog worker: the cluster's workers were not started for this catalog"
        return f"waiting for a worker with {self.resource} to take it"


def _resource(target: str) -> str:
    return TARGET_RESOURCES.get(target, target.replace("-", "_"))


def choose(targets: Iterable[str], cluster: Mapping[str, float], cpu_fallback: bool) -> str:
    """The resource to ask for: an accelerator target a worker has, else the CPU (where allowed),
    else the first target (the job then waits for a worker with it)."""
    ordered = list(targets)
    for target in ordered:
        if target != CPU_TARGET and cluster.get(_resource(target), 0) > 0:
            return _resource(target)
    if cpu_fallback or CPU_TARGET in ordered:
        return _resource(CPU_TARGET)
    return _resource(ordered[0])


def for_job(job: Job, cluster: Mapping[str, float]) -> Placement:
    """What this job asks the cluster for, given the cluster's live resource totals."""
    from worker.toolkits import execution_targets

    targets, cpu_fallback = execution_targets(job)
    slots = SLOTS if job.kind == "benchmark" else 1
    return Placement(choose(targets, cluster, cpu_fallback), slots)
