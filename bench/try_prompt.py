"""One prompt on one variant, in its own runner process: `python -m bench.try_prompt FORMAT PATH MAX PROMPT`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from catalog import config


def run_in_process(fmt: str, path: Path, prompt: str, max_tokens: int, timeout: float = 120) -> dict:
    """Called by the app: the model loads in a child process, never in the app."""
    from worker.proc import child_environment

    proc = subprocess.run([sys.executable, "-m", "bench.try_prompt", fmt, str(path), str(max_tokens), prompt],
                          cwd=config.PROJECT_DIR, env=child_environment(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"error": "The runner could not generate: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from backends.registry import open_runner

    fmt, path, max_tokens, prompt = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    runner = open_runner(fmt, path)
    start = time.perf_counter()
    text = runner.generate(prompt, max_tokens)
    print(json.dumps({"text": text, "seconds": time.perf_counter() - start, "runtime": runner.runtime}))


if __name__ == "__main__":
    main()
