"""Many processes on one catalog: no lost write, no lock error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from catalog import config, jobs

WRITER = """
import sys
from catalog import jobs
for m in range(int(sys.argv[2])):
    jobs.submit("convert", {"writer": sys.argv[1], "m": m}, title=f"w{sys.argv[1]}-{m}")
"""
READER = """
import time
from catalog import jobs
end = time.time() + float(__import__("sys").argv[1])
reads = 0
while time.time() < end:
    jobs.list_jobs(limit=10)
    reads += 1
print(reads)
"""


def test_n_processes_times_m_writes_plus_a_reader(root: Path) -> None:
    n, m = 6, 25
    env = {"PYTHONPATH": str(config.PROJECT_DIR), config.ROOT_ENV: str(root), "PATH": "/usr/bin:/bin"}
    reader = subprocess.Popen([sys.executable, "-c", READER, "8"], env=env, cwd=config.PROJECT_DIR,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(i), str(m)], env=env, cwd=config.PROJECT_DIR,
                                stderr=subprocess.PIPE, text=True) for i in range(n)]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
        assert "lock" not in err.lower()
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err
    assert int(out) > 0
    rows = jobs.list_jobs(limit=10_000)
    assert len(rows) == n * m
    assert len({(r.recipe["writer"], r.recipe["m"]) for r in rows}) == n * m
