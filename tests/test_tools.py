"""backends.tools.run_tool with plain POSIX programs (no toolkit needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.tools import ToolFailed, ToolMissing, run_tool


def test_run_tool_timeout(tmp_path: Path) -> None:
    with pytest.raises(ToolFailed, match="did not finish") as info:
        run_tool(["/bin/sleep", "5"], tmp_path / "sleep.log", timeout=0.5)
    assert info.value.returncode is None
    assert "[killed after 0.5 s]" in (tmp_path / "sleep.log").read_text()


def test_lines_partial_lines_and_the_log(tmp_path: Path) -> None:
    """Lines end at \\r or \\n; a partial line is passed on once the tool is quiet for a moment."""
    log = tmp_path / "deep" / "tool.log"
    seen: list[str] = []
    script = "printf 'one\\ntwo\\rthree\\n'; printf '[1]12.3,'; sleep 1; printf '[2]11.8,\\n'"
    assert run_tool(["/bin/sh", "-c", script], log, seen.append) == 0
    assert seen == ["one", "two", "three", "[1]12.3,", "[2]11.8,"]
    assert log.read_text().startswith("$ /bin/sh -c ")
    assert "[1]12.3,[2]11.8," in log.read_text()


def test_failure_names_the_program_and_its_last_line(tmp_path: Path) -> None:
    log = tmp_path / "fail.log"
    with pytest.raises(ToolFailed) as info:
        run_tool(["/bin/sh", "-c", "echo first; echo 'the reason'; exit 3"], log)
    assert str(info.value) == f"sh failed with exit status 3 (the reason); its log is {log}."
    assert info.value.returncode == 3
    assert info.value.log_tail == "first\nthe reason"
    assert run_tool(["/bin/sh", "-c", "exit 3"], log, ok_returncodes=(0, 3)) == 3


def test_a_broken_callback_does_not_stop_the_tool(tmp_path: Path) -> None:
    def broken(line: str) -> None:
        raise ValueError(line)

    assert run_tool(["/bin/sh", "-c", "echo a; echo b"], tmp_path / "t.log", broken) == 0


def test_env_cwd_and_a_name_on_path(tmp_path: Path) -> None:
    seen: list[str] = []
    run_tool(["sh", "-c", 'echo "$EXTRA $(pwd)"'], tmp_path / "t.log", seen.append, env={"EXTRA": "x"}, cwd=tmp_path)
    assert seen == [f"x {tmp_path}"]
    with pytest.raises(ToolMissing, match="no-such-program-here was not found"):
        run_tool(["no-such-program-here"], tmp_path / "t.log")
