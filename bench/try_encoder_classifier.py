"""One input on several encoder or classifier variants, in one runner process:
`python -m bench.try_encoder_classifier SPEC_JSON`.

An encoder gets two sentences and answers their cosine similarity per variant; a classifier gets
one held-out digits image and answers each variant's class and confidence. Models load in the
child process, never in the app.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from catalog import config


def run_in_process(spec: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    """spec: task, tokenizer (folder), variants [[label, format, path], ...], and sentences or image."""
    from worker.proc import child_environment

    proc = subprocess.run([sys.executable, "-m", "bench.try_encoder_classifier", json.dumps(spec)],
                          cwd=config.PROJECT_DIR, env=child_environment(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"error": "The runner failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def answer(spec: dict[str, Any]) -> list[dict[str, Any]]:
    from backends.encoder_classifier_quality import cosine
    from backends.registry import open_encoder_classifier
    from backends.runtime import outputs
    from workloads.datasets import digits
    from workloads.encoder_classifier_inputs import CLASSIFIER_TASK, encode_sentences, softmax

    task = spec["task"]
    if task == CLASSIFIER_TASK:
        feeds = {"pixel_values": digits().test_images[spec["image"]:spec["image"] + 1]}
    else:
        feeds = encode_sentences(Path(spec["tokenizer"]), spec["sentences"], 128)
    rows = []
    for label, fmt, path in spec["variants"]:
        runner = open_encoder_classifier(fmt, Path(path), task, threads=2)
        start = time.perf_counter()
        out = outputs(runner, feeds)
        seconds = time.perf_counter() - start
        runner.close()
        if task == CLASSIFIER_TASK:
            probs = softmax(out)[0]
            rows.append({"variant": label, "class": int(probs.argmax()), "confidence": float(probs.max()),
                         "ms": 1000 * seconds})
        else:
            rows.append({"variant": label, "cosine of the two sentences": float(cosine(out[0:1], out[1:2])[0]),
                         "ms": 1000 * seconds})
    return rows


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps({"rows": answer(spec)}, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))


if __name__ == "__main__":
    main()
