"""OpenVINO's post-install step: opting out of its telemetry for good.

openvino-telemetry counts a missing consent file as consent for callers that skip its dialog
(NNCF does), so the environment variable alone is not enough: the opt-out is recorded in
~/intel/openvino_telemetry ("0"), with the tool the package installs beside the interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONSENT_FILE = Path.home() / "intel" / "openvino_telemetry"


def opted_out() -> bool:
    try:
        return CONSENT_FILE.read_text().strip() == "0"
    except OSError:
        return False


def opt_out() -> None:
    tool = Path(sys.executable).parent / "opt_in_out"
    subprocess.run([str(tool), "--opt_out"], check=True, stdout=subprocess.DEVNULL, timeout=60)
