"""A feature whose optional packages are missing says so in one line naming its extra, the
same way everywhere: every check goes through :mod:`hifigan.extras`, and every extra it names
is one that ``pyproject.toml`` declares and that installs the package checked for."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

from hifigan.errors import HiFiGANError
from hifigan.extras import (
    MissingExtraError,
    available,
    install_command,
    package_dir,
    require,
    unavailable,
)
from test_extras import DISTRIBUTION, PACKAGE, _normalise, declared

CHECKS = ("require", "unavailable")


def _absent(monkeypatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled: an import of them fails, and no finder finds them."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_require_names_the_extra_the_command_and_what_is_missing(monkeypatch):
    require("serve", "json", purpose="nothing")  # installed: no error
    _absent(monkeypatch, "uvicorn", "websockets")
    assert not available("uvicorn") and package_dir("uvicorn") is None
    with pytest.raises(MissingExtraError) as caught:
        require("serve", "json", "uvicorn", "websockets", purpose="hifigan serve")
    assert str(caught.value) == (
        "hifigan serve needs the serve extra: pip install 'hifigan[serve]' "
        "(uvicorn and websockets are not installed)"
    )
    assert isinstance(caught.value, HiFiGANError)
    assert unavailable("serve", "json", purpose="x") is None
    assert install_command("onnx") == "pip install 'hifigan[onnx]'"
    assert package_dir("json") is not None and package_dir("nonexistent_pkg_xyz") is None


def _check_names(tree: ast.AST) -> set[str]:
    """The local names under which a module imports :mod:`hifigan.extras`' checks."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "extras":
            names.update(a.asname or a.name for a in node.names if a.name in CHECKS)
    return names


def _values(module: str, args: list[ast.expr]) -> list[str]:
    """The call's positional arguments as they run: literals, and module-level names
    (``*NAMES`` too) looked up in the imported module; local names (modules computed from a
    registry, a function's argument) are left out."""
    found: list[str] = []
    for arg in args:
        starred = isinstance(arg, ast.Starred)
        node = arg.value if starred else arg
        if isinstance(node, ast.Constant):
            value = node.value
        else:
            assert isinstance(node, ast.Name), f"{module}: {ast.unparse(arg)}"
            value = getattr(importlib.import_module(module), node.id, None)
            if value is None:
                continue
        found.extend(value if starred else [value])
    return found


def _extra_checks() -> list[tuple[str, int, str, list[str]]]:
    """Every call of :func:`~hifigan.extras.require` or :func:`~hifigan.extras.unavailable`
    in the package: ``(file, line, extra, modules)``."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = _check_names(tree)
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in names:
                extra, *modules = _values(module.removesuffix(".__init__"), node.args)
                where = str(path.relative_to(PACKAGE.parent))
                calls.append((where, node.lineno, extra, modules))
    return calls


def test_every_check_names_an_extra_that_installs_what_it_checks():
    _, extras = declared()
    calls = _extra_checks()
    assert len(calls) >= 8, calls  # serve, listen, plots, onnx (2), h5py, tensorboard, demo...
    wrong = []
    for where, line, extra, modules in calls:
        if extra not in extras:
            wrong.append(f"{where}:{line}: no extra {extra!r}")
            continue
        for module in modules:
            top = module.split(".")[0]
            if _normalise(DISTRIBUTION.get(top, top)) not in extras[extra]:
                wrong.append(f"{where}:{line}: the {extra} extra does not install {module}")
    assert not wrong, wrong


def _optional_checks_outside_extras() -> list[str]:
    """``find_spec`` calls and ``except ImportError`` handlers outside :mod:`hifigan.extras`:
    the other ways of checking for a package, which this package does not use."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "extras.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr == "find_spec":
                found.append(f"{where} find_spec")
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                if names & {"ImportError", "ModuleNotFoundError"}:
                    found.append(f"{where} except ImportError")
    return found


def test_packages_are_looked_for_only_through_extras():
    assert not _optional_checks_outside_extras()


@pytest.mark.parametrize(
    ("modules", "extra", "call"),
    [
        (("matplotlib",), "eval", "plots"),
        (("onnxruntime",), "onnx", "onnxruntime"),
        (("onnxscript",), "onnx", "export"),
        (("h5py",), "toolkits", "stats"),
    ],
)
def test_library_features_without_their_packages(monkeypatch, tmp_path, modules, extra, call):
    _absent(monkeypatch, *modules)
    if call == "plots":
        from hifigan.plots import pyplot as run
    elif call == "onnxruntime":
        from hifigan.inference.onnx import import_onnxruntime as run
    elif call == "export":
        from hifigan.inference.onnx import ExportError, onnx_bytes

        def run():
            with pytest.raises(ExportError) as export:
                onnx_bytes(None)  # refused before the generator is looked at
            raise export.value
    else:
        from hifigan.conventions.values import load_stats

        (tmp_path / "stats.h5").write_bytes(b"\x89HDF\r\n\x1a\n")

        def run():
            load_stats(tmp_path / "stats.h5")

    with pytest.raises(HiFiGANError) as caught:
        run()
    message = str(caught.value)
    assert f"needs the {extra} extra: {install_command(extra)}" in message
    assert f"({modules[0]} is not installed)" in message and "\n" not in message
    if call == "stats":
        assert message.startswith(f"{tmp_path / 'stats.h5'}: reading a stats.h5 file")


def test_training_without_tensorboard_warns_once_and_goes_on(monkeypatch, tmp_path):
    from hifigan.train.monitor import Monitor

    _absent(monkeypatch, "tensorboard")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        Monitor(tmp_path, active=True, start_step=0, resumed=False, total=10, progress=False)
    lines = [str(w.message) for w in said]
    assert lines == [
        "no TensorBoard logs: TensorBoard logging needs the train extra: "
        "pip install 'hifigan[train]' (tensorboard is not installed)"
    ]


BLOCK = "import sys; sys.modules.update(dict.fromkeys({names!r})); from hifigan.cli import main; "


@pytest.mark.parametrize(
    ("blocked", "args", "line"),
    [
        (
            ["uvicorn"],
            ["serve"],
            "error: hifigan serve needs the serve extra: pip install 'hifigan[serve]' "
            "(uvicorn is not installed)",
        ),
        (
            ["starlette", "uvicorn"],
            ["listen", "--db", "ratings.sqlite", "--ref", "."],
            "error: the listening test needs the serve extra: pip install 'hifigan[serve]' "
            "(starlette and uvicorn are not installed)",
        ),
    ],
)
def test_commands_without_the_serve_extra_say_one_line(tmp_path, blocked, args, line):
    code = BLOCK.format(names=blocked) + f"sys.exit(main({args!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "ratings.sqlite").exists()


def test_the_service_made_in_python_without_the_serve_extra(monkeypatch):
    from hifigan.serve import ServeConfig, create_app

    _absent(monkeypatch, "websockets")
    with pytest.raises(MissingExtraError, match=r"^hifigan.serve.create_app needs the serve extra"):
        create_app(ServeConfig(models=["nope"]))


def test_demo_report_names_the_eval_extra_when_scoring_cannot_run(monkeypatch):
    from hifigan.cli.demo import objective_metrics

    _absent(monkeypatch, "pystoi")
    speech = (0.3 * np.sin(np.arange(22050) / 10)).astype(np.float32)
    assert objective_metrics(speech, speech, 22050) == (
        "not installed: scoring needs the eval extra: pip install 'hifigan[eval]' "
        "(pystoi is not installed)"
    )
