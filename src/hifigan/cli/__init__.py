"""The ``hifigan`` command: one subcommand per pipeline stage.

Every module of this package that defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` is a subcommand named after the module (``_`` becomes ``-``). Commands are
listed in pipeline order (:data:`ORDER`), any others after them.

Import policy: subcommand modules import the package's own modules at the top (torch, which
every command needs, dominates start-up: about 1.2 s of the 1.3 s of ``hifigan --help``; the
package's modules add under 30 ms). Optional third-party packages (Starlette, uvicorn,
matplotlib, ONNX, the metric packages) are imported where they are used, so that every
command's ``--help`` works without its extra installed.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from ..errors import HiFiGANError

ORDER = [
    "demo", "models", "prepare", "train", "mel", "mel-check", "vocode", "serve", "evaluate",
    "listen", "export", "bench",
]  # fmt: skip
_NOT_COMMANDS = {"common"}


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def command_modules() -> dict[str, object]:
    """Subcommand name -> module, in display order."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f".{info.name}", __name__)
        if hasattr(module, "HELP") and hasattr(module, "run"):
            found[info.name.replace("_", "-")] = module
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hifigan", description="HiFi-GAN vocoder: train, evaluate, vocode, export, benchmark."
    )
    parser.add_argument("--version", action="version", version=f"hifigan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in command_modules().items():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__ or module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(_run=module.run)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hifigan`` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    warnings.formatwarning = _format_warning
    try:
        return args._run(args)
    except HiFiGANError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
