"""The shape of bench/jobs: no import cycle among its modules (every import statement counts,
including those inside functions), and no job module opens the catalog or writes SQL: job code
records through its JobContext."""

from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parent.parent / "bench" / "jobs"
PACKAGE = "bench.jobs"
# Modules that open the catalog or talk to DuckDB directly.
DATABASE_MODULES = {"duckdb", "catalog.db", "catalog.database"}


def _imports(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth of the syntax tree."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # `from catalog import db` names the module catalog.db
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{p.stem}": p for p in JOBS.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_job_modules_import_one_way() -> None:
    graph = _graph()
    assert {"bench.jobs.common", "bench.jobs.causal_lm", "bench.jobs.encoder_classifier"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert "bench.jobs.common" in graph["bench.jobs.causal_lm"]
    assert "bench.jobs.common" in graph["bench.jobs.encoder_classifier"]


def test_the_job_package_imports_none_of_its_modules() -> None:
    """Importing bench.jobs.common runs bench/jobs/__init__.py first; if that imported a kind's
    module the cycle would be back, one level up."""
    assert not {m for m in _imports(JOBS / "__init__.py") if m.startswith(PACKAGE)}


def test_no_job_module_opens_the_catalog_or_writes_sql() -> None:
    for path in JOBS.glob("*.py"):
        assert not _imports(path) & DATABASE_MODULES, f"{path.name} opens the catalog; record through ctx"
        text = path.read_text()
        for keyword in ("INSERT INTO", "UPDATE ", "DELETE FROM", ".execute("):
            assert keyword not in text, f"{path.name} writes SQL ({keyword.strip()}); record through ctx"
