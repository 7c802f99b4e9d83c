"""The layout rules, read from the source with ast (nothing is imported):

a) the project's own modules import one another without cycles;
b) SQL is written and run only in catalog/;
c) the format names ("gguf", "onnx", ...) are spelt only in the toolkit folders (backends/<toolkit>/)
   and backends/registry.py;
d) shared code (outside the toolkit folders and backends/registry.py) imports no toolkit, neither
   its package in backends/ nor its third-party modules, and spells none of a toolkit's option
   names: it asks the registry.

Each test fails with the list of offenders, one per line, as path:line.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Folders that hold no project code: the test suite, the embedded data root (a model's remote
# code may live there), documentation.
NOT_PROJECT = {"tests", "data", "docs"}


def _skipped_dir(path: Path) -> bool:
    return (path.name.startswith(".") or path.name == "__pycache__" or path.name == "node_modules"
            or (path / "pyvenv.cfg").exists())


@cache
def project_files() -> tuple[Path, ...]:
    """Every .py file of the project: top-level scripts and every top-level folder with Python in it."""
    found = [p for p in REPO.glob("*.py") if p.is_file()]
    for top in sorted(REPO.iterdir()):
        if not top.is_dir() or top.name in NOT_PROJECT or _skipped_dir(top):
            continue
        found += _walk(top)
    return tuple(sorted(found))


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if not _skipped_dir(path):
                yield from _walk(path)
        elif path.suffix == ".py" and path.is_file():
            yield path


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def under(path: Path, folder: str) -> bool:
    return rel(path).startswith(folder.rstrip("/") + "/")


# ------------------------------------------------------------------------------------------ a) cycles


def _resolve(name: str, modules: set[str]) -> str | None:
    """The project module a dotted name imports: itself, else its longest prefix that is one."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _imports(path: Path, modules: set[str]) -> Iterator[tuple[str, int]]:
    """(project module, line) for every import statement anywhere in the file (functions included).

    `import a.b` imports a.b; `from a import b` imports a.b when that is a module, else a.
    Relative imports are resolved against the file's package.
    """
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                target = sub if alias.name != "*" and sub in modules else _resolve(base, modules)
                if target:
                    yield target, node.lineno


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Module -> modules it imports, and where each edge is written (path:line)."""
    paths = {module_name(p): p for p in project_files()}
    modules = set(paths)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in paths.items():
        for target, line in _imports(path, modules):
            if target != name:
                graph[name].add(target)
                if f"{rel(path)}:{line}" not in where[name, target]:
                    where[name, target].append(f"{rel(path)}:{line}")
    return graph, where


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module (a module importing itself is ignored)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def import_cycles() -> list[str]:
    graph, where = import_graph()
    report = []
    for comp in strongly_connected(graph):
        members = set(comp)
        edges = [f"    {a} -> {b}  ({', '.join(where[a, b])})" for a in comp for b in sorted(graph[a] & members)]
        report.append(f"cycle of {len(comp)} modules: {', '.join(comp)}\n" + "\n".join(edges))
    return report


def test_the_project_modules_import_one_another_without_cycles() -> None:
    graph, _ = import_graph()
    assert {"cli", "app", "catalog.db", "backends.registry"} <= set(graph), "the module scan found too little"
    cycles = import_cycles()
    assert not cycles, f"{len(cycles)} import cycle(s) among the project's modules:\n" + "\n".join(cycles)


# ------------------------------------------------------------------------------------- b) SQL in catalog/

SQL_START = re.compile(r"(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\s")
# The receivers a catalog connection goes by outside catalog/ (catalog.db.connect() yields a Database).
CONNECTION_NAMES = {"conn", "db", "con"}


def _database_methods() -> set[str]:
    """The public methods of catalog/database.py's Database: the calls that run SQL."""
    tree = parse(REPO / "catalog" / "database.py")
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Database"]
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and not n.name.startswith("_")}


def _string_literals(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(text, line) of every string literal; an f-string counts as its text with {…} for each field."""
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstrings.update(id(v) for v in node.values)
            yield "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values), node.lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            yield node.value, node.lineno


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # self.conn, ctx.db
        return node.attr
    return None


def sql_outside_catalog() -> list[str]:
    methods = _database_methods()
    offenders = []
    for path in project_files():
        if under(path, "catalog"):
            continue
        tree = parse(path)
        for text, line in _string_literals(tree):
            if SQL_START.match(text.lstrip()):
                offenders.append(f"{rel(path)}:{line}: SQL text {text.strip().splitlines()[0][:70]!r}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods
                    and _receiver_name(node.func.value) in CONNECTION_NAMES):
                offenders.append(f"{rel(path)}:{node.lineno}: {ast.unparse(node.func)}(...) on a catalog connection")
    return sorted(set(offenders), key=_by_place)


def _by_place(entry: str) -> tuple[str, int]:
    path, line, _ = entry.split(":", 2)
    return path, int(line)


def test_sql_is_written_and_run_only_in_catalog() -> None:
    assert {"query", "execute", "scalar", "one"} <= _database_methods()
    offenders = sql_outside_catalog()
    assert not offenders, f"{len(offenders)} SQL statement(s) or calls outside catalog/:\n" + "\n".join(offenders)


# ------------------------------------------------------------------------ c) formats in the toolkit folders

FORMAT_LITERALS = {"gguf", "onnx", ".gguf", ".onnx", "onnx-genai"}


def toolkit_folders() -> list[str]:
    """backends/<toolkit>/: every package folder inside backends/."""
    backends = REPO / "backends"
    return sorted(f"backends/{p.name}" for p in backends.iterdir()
                  if p.is_dir() and not _skipped_dir(p) and (p / "__init__.py").is_file())


def format_literals_outside_toolkits() -> list[str]:
    allowed = toolkit_folders()
    offenders: Counter[str] = Counter()
    for path in project_files():
        if rel(path) == "backends/registry.py" or any(under(path, folder) for folder in allowed):
            continue
        # Every string constant, f-string pieces included (f"{stem}.gguf" spells ".gguf").
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FORMAT_LITERALS:
                offenders[f"{rel(path)}:{node.lineno}: {node.value!r}"] += 1
    return [entry + (f" ({n} times)" if n > 1 else "") for entry, n in sorted(offenders.items(),
                                                                               key=lambda e: _by_place(e[0]))]


def test_format_names_are_spelt_only_in_the_toolkit_folders() -> None:
    offenders = format_literals_outside_toolkits()
    folders = ", ".join(f + "/" for f in toolkit_folders()) or "the toolkit folders (backends/<toolkit>/, none yet)"
    assert not offenders, (f"{len(offenders)} format literal(s) outside {folders} and "
                           "backends/registry.py:\n" + "\n".join(offenders))


# --------------------------------------------------------------- d) toolkits only in their own folders

# The third-party modules that belong to one toolkit (their first dotted part), today's and the
# announced ones'. Libraries every toolkit shares (torch, transformers, numpy) are not listed.
TOOLKIT_MODULES = {"llama_cpp", "gguf", "onnxruntime", "onnxruntime_genai", "onnx", "onnx_ir", "openvino",
                   "openvino_genai", "openvino_tokenizers", "nncf", "optimum", "olive", "mlx", "mlx_lm", "qai_hub"}
# Option names that are also shared words, so a literal in shared code is not a leak:
SHARED_OPTION_WORDS = {
    "calibration": "the shared calibration-data option: the Convert form uploads it, catalog/calibration.py keeps it",
    "format": "a variant's format field (variant.format, a speed run's spec)",
    "precision": "a variant's precision field",
    "device": "the device a runner reports, recorded in the fingerprint",
    "samples": "the smoke test's sample count",
}


def _shared_files() -> Iterator[Path]:
    """Every project file outside the toolkit folders and backends/registry.py."""
    allowed = toolkit_folders()
    for path in project_files():
        if rel(path) != "backends/registry.py" and not any(under(path, folder) for folder in allowed):
            yield path


def _imported_names(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The dotted names an import statement names: `from a import b` names a and a.b."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.module and not node.level:
        yield node.module
        yield from (f"{node.module}.{alias.name}" for alias in node.names)


def toolkit_imports_in_shared_code() -> list[str]:
    packages = {folder.replace("/", ".") for folder in toolkit_folders()}
    offenders = set()
    for path in _shared_files():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = list(_imported_names(node))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value.partition(":")[0]]  # importlib.import_module("backends.x"), "module:function"
                names = [n for n in names if any(n == p or n.startswith(p + ".") for p in packages)]
            else:
                continue
            hits = [name for name in names if name.split(".")[0] in TOOLKIT_MODULES
                    or any(name == p or name.startswith(p + ".") for p in packages)]
            if hits:  # `from backends.x import y` once, as its most precise name
                offenders.add(f"{rel(path)}:{node.lineno}: {max(hits, key=len)}")
    return sorted(offenders, key=_by_place)


def toolkit_option_names() -> set[str]:
    """Every option a toolkit declares: the first argument of each Option(...) / VerifiedChoice(...)
    call in a toolkit folder (read with ast, so a new toolkit's options are covered unlisted)."""
    names = set()
    for folder in toolkit_folders():
        for path in _walk(REPO / folder):
            for node in ast.walk(parse(path)):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("Option", "VerifiedChoice") and node.args
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    names.add(node.args[0].value)
    return names


def option_names_in_shared_code() -> list[str]:
    names = toolkit_option_names() - set(SHARED_OPTION_WORDS)
    offenders: Counter[str] = Counter()
    for path in _shared_files():
        for text, line in _string_literals(parse(path)):
            if text in names:
                offenders[f"{rel(path)}:{line}: {text!r}"] += 1
    return [entry + (f" ({n} times)" if n > 1 else "") for entry, n in sorted(offenders.items(),
                                                                               key=lambda e: _by_place(e[0]))]


def test_shared_code_imports_no_toolkit() -> None:
    offenders = toolkit_imports_in_shared_code()
    assert not offenders, (f"{len(offenders)} import(s) of a toolkit outside its folder (ask backends.registry, "
                           "or move the code into backends/<toolkit>/):\n" + "\n".join(offenders))


def test_toolkit_option_names_are_spelt_only_in_the_toolkit_folders() -> None:
    names = toolkit_option_names()
    assert {"types", "weight_format", "performance_hint"} <= names, "the option scan found too little"
    offenders = option_names_in_shared_code()
    assert not offenders, (f"{len(offenders)} toolkit option name(s) in shared code (declare what it needs on the "
                           "Conversion or Format and ask the registry):\n" + "\n".join(offenders))


# ------------------------------------------------ e) pages render; f) no import points up the layers

# The pages and their rendering helpers: they read the catalog and call service.actions, which does
# every write (role check and audit row); bench/jobs/ is job code, run by the worker.
PAGE_CODE = ("pages", "ui")
PAGE_FORBIDDEN_IMPORTS = ("bench.jobs",)
WRITING_METHODS = {"write_text", "write_bytes", "mkdir", "touch", "unlink", "rmdir"}
WRITING_FUNCTIONS = ({("shutil", n) for n in ("copy", "copy2", "copyfile", "copytree", "copyfileobj", "move", "rmtree")}
                     | {("os", n) for n in ("mkdir", "makedirs", "remove", "unlink", "rename", "replace", "rmdir")})


def _page_files() -> Iterator[Path]:
    return (p for p in project_files() if any(under(p, folder) for folder in PAGE_CODE) or rel(p) == "app.py")


def _opens_for_writing(node: ast.Call) -> bool:
    if not (isinstance(node.func, ast.Name) and node.func.id == "open"
            or isinstance(node.func, ast.Attribute) and node.func.attr == "open"):
        return False
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))


def page_writes_and_job_imports() -> list[str]:
    _, where = import_graph()
    offenders = [f"{place}: imports {target}" for (source, target), places in where.items() for place in places
                 if place.split("/")[0] in PAGE_CODE or place.startswith("app.py:")
                 if any(target == f or target.startswith(f + ".") for f in PAGE_FORBIDDEN_IMPORTS)]
    for path in _page_files():
        for node in ast.walk(parse(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            named = (func.value.id, func.attr) if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                else None
            if (_opens_for_writing(node) or named in WRITING_FUNCTIONS
                    or isinstance(func, ast.Attribute) and func.attr in WRITING_METHODS):
                offenders.append(f"{rel(path)}:{node.lineno}: writes a file ({ast.unparse(func)}(...))")
    return sorted(set(offenders), key=_by_place)


def test_pages_render_and_leave_writes_to_the_service() -> None:
    offenders = page_writes_and_job_imports()
    assert not offenders, (f"{len(offenders)} page write(s) or job import(s) (call service.actions, which checks the "
                           "role and writes the audit row):\n" + "\n".join(offenders))


# importer folder -> the modules it may not import (they sit above it), and the one module of the
# folder that may: the worker reaches the toolkits' declarations only through worker/toolkits.py.
UPWARD_IMPORTS: dict[str, tuple[str, ...]] = {
    "catalog": ("backends", "service", "bench", "worker", "workloads", "pages", "ui", "app", "cli"),
    "workloads": ("bench", "backends", "service", "worker", "pages", "ui", "app", "cli"),
    "worker": ("backends", "service", "bench", "pages", "ui", "app", "cli"),
    "backends": ("service", "pages", "ui", "app", "cli"),
    "bench": ("service", "pages", "ui", "app", "cli"),
}
DOORS = {"worker.toolkits": ("backends.registry",)}


def upward_imports() -> list[str]:
    _, where = import_graph()
    offenders = []
    for (source, target), places in where.items():
        above = UPWARD_IMPORTS.get(source.split(".")[0], ())
        if any(target == up or target.startswith(up + ".") for up in above) and target not in DOORS.get(source, ()):
            offenders += [f"{place}: {source} imports {target}" for place in places]
    return sorted(offenders, key=_by_place)


def test_no_import_points_up_the_layers() -> None:
    offenders = upward_imports()
    assert not offenders, (f"{len(offenders)} import(s) pointing up the layers (pass what is needed in from the "
                           "caller, or move the code down):\n" + "\n".join(offenders))
