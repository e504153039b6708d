"""The ``hifigan`` command: one subcommand per pipeline stage.

Each subcommand lives in its own module of this package and exposes ``add_arguments(parser)``
and ``run(args) -> int``; :data:`COMMANDS` lists them with a one-line help. Modules are imported
only when their command runs, so ``hifigan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..errors import HiFiGANError

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "mel": ("mel", "compute log-mel spectrograms of audio files (.npy, (n_mels, frames))"),
    "vocode": ("vocode", "turn audio (copy synthesis) or mel files into wav files"),
}


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="hifigan", description="HiFi-GAN vocoder: train, evaluate, vocode, export, benchmark."
    )
    parser.add_argument("--version", action="version", version=f"hifigan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(f".{module}", __name__).add_arguments(p)
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
        return importlib.import_module(f".{args._module}", __name__).run(args)
    except HiFiGANError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
