"""Olive's own config model over a workflow config read from stdin: `python -m backends.olive.check_config`.

Exit 0 when RunConfig accepts it; otherwise the last line of output is one sentence. Run as a
subprocess by workflow.check_with_olive (importing Olive loads torch).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    cfg = json.loads(sys.stdin.read())
    from backends.olive.launch import silence_telemetry

    silence_telemetry()
    from olive.workflows.run.config import RunConfig
    from pydantic import ValidationError

    try:
        RunConfig.model_validate(cfg)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        sys.stderr.write(f"Olive's config model refuses it: {where or 'config'}: {first.get('msg', exc)}\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - its validators raise what they meet (AttributeError on a wrong type)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        sys.stderr.write(f"Olive's config model refuses it: {type(exc).__name__} {text}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
