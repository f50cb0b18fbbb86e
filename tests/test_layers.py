"""The library's layering: no import cycle inside kotti_migrate, no oversized module or class.

Walks every module's source (imports at the top, inside functions and
under ``TYPE_CHECKING`` alike), so a cycle hidden by a function-local
import is found too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kotti_migrate

MAX_MODULE_LINES = 350
MAX_CLASS_LINES = 250

PACKAGE = Path(kotti_migrate.__file__).parent


def module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported_modules(package: str, modules: set[str], name: str, path: Path) -> set[str]:
    """The package's own modules that module ``name`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def add(target: str) -> None:
        # ``import pkg.a.b`` depends on pkg.a.b (importing its parents is not a
        # dependency on their code); ``from pkg import name`` on pkg's __init__.
        parts = target.split(".")
        for i in range(len(parts), 0, -1):
            candidate = ".".join(parts[:i])
            if candidate in modules:
                found.add(candidate)
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # from . import database; from kotti_migrate import Migrations
                submodule = f"{target}.{alias.name}"
                add(submodule if submodule in modules else target)
    found.discard(name)
    return found


def import_graph(package: str, root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``__init__`` as the package itself)."""
    paths = {module_name(package, root, path): path for path in sorted(root.rglob("*.py"))}
    modules = set(paths)
    return {name: imported_modules(package, modules, name, path) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def oversized(root: Path) -> list[str]:
    """Modules over MAX_MODULE_LINES lines and classes over MAX_CLASS_LINES, as readable lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.name}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                span = node.end_lineno - start + 1
                if span > MAX_CLASS_LINES:
                    found.append(f"{path.name}: class {node.name}: {span} lines (at most {MAX_CLASS_LINES})")
    return found


def test_no_import_cycle_in_kotti_migrate():
    graph = import_graph("kotti_migrate", PACKAGE)
    assert len(graph) > 20 and graph["kotti_migrate.commands"], graph  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_or_class_too_long():
    assert oversized(PACKAGE) == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_cycle_through_a_function_local_import_is_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import f\n",
            "a.py": "from . import b\n\ndef f():\n    return b\n",
            "b.py": "import os\n\ndef g():\n    from .c import h\n    return h\n",
            "c.py": "def h():\n    from pkg.a import f\n    return f\n",
            "d.py": "from .a import f\nimport pkg.b\n",
        },
    )
    graph = import_graph("pkg", package)
    assert graph["pkg.d"] == {"pkg.a", "pkg.b"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_a_module_importing_a_name_from_the_package_depends_on_its_init(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import f\n",
            "a.py": "def f():\n    from pkg import g\n    return g\n",
            "b.py": "from pkg import a\n",
        },
    )
    graph = import_graph("pkg", package)
    assert graph["pkg.b"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg", "pkg.a", "pkg"]


def test_relative_imports_from_subpackages_and_type_checking_count(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.high import X\n",
            "sub/__init__.py": "",
            "sub/high.py": "from ..low import Y\nX = 1\n",
        },
    )
    graph = import_graph("pkg", package)
    assert graph["pkg.sub.high"] == {"pkg.low"}
    assert find_cycle(graph) == ["pkg.low", "pkg.sub.high", "pkg.low"]
    (package / "low.py").write_text("Y = 2\n")
    assert find_cycle(import_graph("pkg", package)) is None


def test_a_long_module_and_a_long_class_are_found(tmp_path):
    package = write_package(
        tmp_path,
        {
            "long.py": "x = 1\n" * (MAX_MODULE_LINES + 1),
            "klass.py": "class Big:\n" + "    a = 1\n" * MAX_CLASS_LINES,
            "fine.py": "class Small:\n" + "    a = 1\n" * (MAX_CLASS_LINES - 1),
        },
    )
    assert oversized(package) == [
        f"klass.py: class Big: {MAX_CLASS_LINES + 1} lines (at most {MAX_CLASS_LINES})",
        f"long.py: {MAX_MODULE_LINES + 1} lines (at most {MAX_MODULE_LINES})",
    ]


def test_importing_the_start_up_path_imports_no_alembic_or_mako():
    """``config.include('kotti_migrate')`` at head needs neither: they are imported where used."""
    code = (
        "import sys, kotti_migrate, kotti_migrate.startup, kotti_migrate.boot, kotti_migrate.probe\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []
    code = "import sys, kotti_migrate.graph\nprint('alembic.script' in sys.modules)\n"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "True"  # the check can see an import


def test_an_at_head_boot_imports_only_what_it_needs():
    """``config.include('kotti_migrate')`` imports the start-up hook and what an at-head check
    uses; the planner, revision indexes, models and Alembic's machinery only on the long way."""
    code = (
        "import sys, kotti_migrate, kotti_migrate.boot\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('kotti_migrate.'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == [
        f"kotti_migrate.{name}"
        for name in (
            "boot", "cache", "database", "errors", "kotti_site", "locations", "records", "settings", "values",
        )
    ]  # fmt: skip


def test_the_start_up_path_defines_no_dataclass():
    """A dataclass costs about 1 ms to define (compiled methods): the boot path uses values.Value."""
    code = (
        "import sys, dataclasses, kotti_migrate, kotti_migrate.startup, kotti_migrate.boot\n"
        "import kotti_migrate.probe\n"
        "import kotti_migrate.views\n"
        "print(' '.join(sorted(f'{m.__name__}.{name}' for m in list(sys.modules.values())\n"
        "    if m.__name__.startswith('kotti_migrate') for name, value in vars(m).items()\n"
        "    if isinstance(value, type) and dataclasses.is_dataclass(value))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []
    loaded = subprocess.run(
        [sys.executable, "-c", code.replace("kotti_migrate.probe", "kotti_migrate.runner")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "kotti_migrate.failures.StepRecorder" in loaded.stdout.split()  # the check sees one
