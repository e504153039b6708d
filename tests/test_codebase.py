"""Structure rules a reader can rely on: no import cycles, the command line on top of the
library (never under it), short functions, plain --help."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hifigan.cli import command_modules

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hifigan"
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (annotations only:
    they never run, so they cannot make an import cycle)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(path: Path, name: str, *, runtime_only: bool = True) -> set[str]:
    """The package modules that ``path`` (module ``name``) imports when it runs, at any depth
    of its code (functions included); with ``runtime_only=False`` also those imported for
    annotations only."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in _runtime_nodes(tree) if runtime_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hifigan"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("hifigan"):
                module = node.module
            else:
                continue
            found.add(module)
            # `from . import x` may name a submodule
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (only edges to modules that exist)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, name) & set(files) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_among_package_modules():
    graph = import_graph()
    assert graph.get("hifigan.cli")
    # a package's __init__ importing its own submodules is not a cycle worth reporting,
    # but submodules importing each other in a circle is
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


CLI = "hifigan.cli"
#: the only modules that may import the command line: itself and ``python -m hifigan``
CLI_USERS = (CLI, "hifigan.__main__")
_CLI_NAME = re.compile(r"^hifigan\.cli(?:$|[.:])")


def cli_imports(path: Path, name: str) -> list[str]:
    """What module ``name`` (file ``path``) takes from the command line: imports of
    ``hifigan.cli`` or its modules, absolute or relative, at any depth (annotation-only ones
    too), and module names in strings (``importlib.import_module``, a server's app path)."""
    found = {m for m in _imports(path, name, runtime_only=False) if _CLI_NAME.match(m)}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(m for m in [node.value] if _CLI_NAME.match(m))
    return sorted(found)


def _is_cli(name: str) -> bool:
    return any(name == user or name.startswith(user + ".") for user in CLI_USERS)


def test_the_cli_rule_sees_every_kind_of_import(tmp_path):
    module = tmp_path / "hifigan" / "serve" / "fake.py"
    module.parent.mkdir(parents=True)
    cases = {
        "from ..cli.options import env_value": ["hifigan.cli.options"],
        "from .. import cli": ["hifigan.cli"],
        "import hifigan.cli.common": ["hifigan.cli.common"],
        "def f():\n    from hifigan.cli.demo import X": ["hifigan.cli.demo"],
        "import importlib\nimportlib.import_module('hifigan.cli.serve')": ["hifigan.cli.serve"],
        "from ..threads import apply_threads\nNAME = 'hifigan.client'": [],
    }
    for source, expected in cases.items():
        module.write_text(source + "\n")
        found = cli_imports(module, "hifigan.serve.fake")
        assert set(expected) <= set(found), source
        assert bool(found) == bool(expected), source
    assert _is_cli("hifigan.cli.serve") and _is_cli("hifigan.__main__")
    assert not _is_cli("hifigan.client") and not _is_cli("hifigan.serve.app")


def test_only_the_command_line_imports_the_command_line():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    assert CLI in files and "hifigan.serve.app" in files
    wrong = {
        name: found
        for name, path in sorted(files.items())
        if not _is_cli(name) and (found := cli_imports(path, name))
    }
    assert not wrong, f"library modules that import the command line: {wrong}"


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines})")
    assert not long, "functions over 80 lines: " + ", ".join(long)


@pytest.mark.parametrize("command", list(command_modules()))
def test_help_is_plain_text(command):
    result = subprocess.run(
        [sys.executable, "-m", "hifigan", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "``" not in text and ":class:" not in text and ":func:" not in text, text
    assert len(text.strip().splitlines()) > 2


def test_every_file_the_package_reads_is_in_its_wheel():
    """A non-Python file under ``src/hifigan`` (presets, conventions, the demo clip, pages, the
    C kernel) reaches a non-editable install only through ``package-data``: an editable
    install, as in the tests, finds it either way."""
    import fnmatch

    # the list under [tool.setuptools.package-data] (tomllib is not in Python 3.10)
    pyproject = (PACKAGE.parents[1] / "pyproject.toml").read_text()
    listed = re.search(r"\[tool\.setuptools\.package-data\]\s*hifigan = \[(.*?)\]", pyproject, re.S)
    assert listed, "pyproject.toml has no package-data list for hifigan"
    patterns = re.findall(r'"([^"]+)"', listed.group(1))
    files = [
        f.relative_to(PACKAGE).as_posix()
        for f in PACKAGE.rglob("*")
        if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts
    ]
    assert files, "no data files found: has the package moved?"
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == [], (
        f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
    )
