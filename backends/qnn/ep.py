"""The QNN execution provider of onnxruntime-qnn: a plugin EP registered beside onnxruntime, its
HTP backend (a simulator on x86_64), which node went where, and EPContext compilation.

onnxruntime-qnn 2.7.0 ships no libQnnCpu.so, so HTP is the only QNN backend that loads here.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from backends.qnn.bundle_runner import (
    EP_NAME,
    SIMULATOR,
    device_label,
    plugin_devices,
    sdk_version,
    session_options,
    versions,
)
from catalog.errors import InvalidInputError

__all__ = ["EP_NAME", "SIMULATOR", "device_label", "sdk_version", "versions"]  # read from here by the toolkit

log = logging.getLogger(__name__)

# Graph-boundary quantize/dequantize nodes: with CPU fallback allowed, ORT leaves them on the CPU
# (measured on the digits CNN); with fallback off the HTP takes them too.
BOUNDARY_OPS = ("QuantizeLinear", "DequantizeLinear")


@functools.cache
def _devices() -> tuple[Any, ...]:
    devices = tuple(plugin_devices())
    if not devices:
        raise InvalidInputError("onnxruntime-qnn registered no QNN device; reinstall onnxruntime-qnn 2.7.0.")
    return devices


def session(model: Path, fallback: bool = False, threads: int = 1, config: dict[str, str] | None = None,
            provider: dict[str, str] | None = None) -> Any:
    """An InferenceSession on the HTP backend. fallback=False: every node must go to the HTP, else
    ORT refuses the session; config: session config entries; provider: QNN EP options."""
    import onnxruntime as ort
    import onnxruntime_qnn

    options = session_options(threads, fallback)
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    options.add_provider_for_devices(list(_devices()),
                                     {"backend_path": onnxruntime_qnn.get_qnn_htp_path(), **(provider or {})})
    return ort.InferenceSession(str(model), options)


def assignment(sess: Any) -> list[dict[str, str]]:
    """Every node of the session's graph (after ORT's own rewrites) with the EP it went to."""
    return [{"name": n.name, "op_type": n.op_type, "provider": sub.ep_name}
            for sub in sess.get_provider_graph_assignment_info() for n in sub.get_nodes()]


def coverage(model: Path) -> dict[str, Any]:
    """Which nodes the HTP backend takes and which fall back to the CPU: the model opened with CPU
    fallback on, before any device (the counts, per op type, and every node)."""
    sess = session(model, fallback=True)
    nodes = assignment(sess)
    on_htp = [n for n in nodes if n["provider"] == EP_NAME]
    on_cpu = [n for n in nodes if n["provider"] != EP_NAME]
    by_op: dict[str, dict[str, int]] = {}
    for n in nodes:
        side = "htp" if n["provider"] == EP_NAME else "cpu"
        by_op.setdefault(n["op_type"], {"htp": 0, "cpu": 0})[side] += 1
    blocking = sorted({n["op_type"] for n in on_cpu} - set(BOUNDARY_OPS))
    return {"device": device_label(), "nodes": len(nodes), "htp_nodes": len(on_htp), "cpu_nodes": len(on_cpu),
            "htp_share": len(on_htp) / len(nodes) if nodes else 0.0, "by_op_type": by_op,
            "cpu_op_types": dict(Counter(n["op_type"] for n in on_cpu)), "blocking_op_types": blocking,
            "fallback_nodes": on_cpu, "partitions": len(sess.get_provider_graph_assignment_info())}


def open_without_fallback(model: Path, threads: int = 1, provider: dict[str, str] | None = None) -> Any:
    """A session with every node on the HTP, or one sentence naming the ops it cannot take."""
    try:
        return session(model, fallback=False, threads=threads, provider=provider)
    except InvalidInputError:
        raise
    except Exception as exc:  # onnxruntime's Fail/EPFail carry the reason in their text only
        raise InvalidInputError(refusal(model, exc)) from exc


def refusal(model: Path, exc: BaseException) -> str:
    """Why the HTP backend refused a model, in one sentence: the ops it left to the CPU (read from a
    session with fallback on), or the QNN error."""
    text = str(exc)
    if "fallback to CPU EP has been explicitly disabled" in text:
        try:
            report = coverage(model)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            report = {"blocking_op_types": [], "cpu_op_types": {}}
        ops = report["blocking_op_types"] or sorted(report["cpu_op_types"])
        if ops:
            which = f"operator {ops[0]}" if len(ops) == 1 else f"operators {', '.join(ops)}"
            return (f"The QNN HTP backend cannot take the {which} of {model.name}, and CPU fallback is off; "
                    "replace or remove those operators, or allow CPU fallback to run them on the CPU.")
    if "QNN_COMMON_ERROR_MEM_ALLOC" in text:
        return (f"The QNN HTP backend could not build {model.name} (QNN_COMMON_ERROR_MEM_ALLOC): float or "
                "unquantized parts do not run on the HTP; quantize the model to QDQ first.")
    first = (text.strip().splitlines() or [type(exc).__name__])[0][:200].rstrip(".")
    return f"The QNN execution provider could not load {model.name} ({first})."


def compile_context(model: Path, out: Path, provider: dict[str, str], embed: bool = True) -> dict[str, Any]:
    """Write an EPContext model (the QNN context binary inside an ONNX wrapper) for the given HTP
    architecture or SoC, with every node on the HTP."""
    import time

    start = time.perf_counter()
    try:
        session(model, fallback=False, provider=provider,
                config={"ep.context_enable": "1", "ep.context_file_path": str(out),
                        "ep.context_embed_mode": "1" if embed else "0"})
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(refusal(model, exc)) from exc
    if not out.is_file():
        raise InvalidInputError("The QNN execution provider wrote no context model; the job log has its output.")
    return {"compile_s": round(time.perf_counter() - start, 3), "embed_mode": int(embed)}


def epcontext_facts(model: Path) -> dict[str, Any]:
    """What an EPContext model says about itself: its nodes, the SDK that made it, its size."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    nodes = [n for n in graph.node if n.op_type == "EPContext"]
    if not nodes:
        raise InvalidInputError(f"{model.name} holds no EPContext node; it is not a QNN context model.")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    sdk = attrs.get("ep_sdk_version", b"")
    return {"epcontext_nodes": len(nodes), "ep_sdk_version": sdk.decode() if isinstance(sdk, bytes) else str(sdk),
            "embed_mode": int(attrs.get("embed_mode", 1)),
            "inputs": [{"name": i.name, "shape": [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]}
                       for i in graph.input],
            "outputs": [{"name": o.name} for o in graph.output]}
