"""``morphlib <command>`` (the installed command) or ``python -m morphlib <command>``.

Each command lives in its own module.

A command module exposes ``add_command(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from morphlib import __version__

# Modules that provide commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "morphlib.morph_cli",
    "morphlib.train",
    "morphlib.evaluate_cli",
    "morphlib.study",
)


def build_parser() -> argparse.ArgumentParser:
    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    prog = "morphlib" if command in ("morphlib", "morphlib.exe") else "python -m morphlib"
    description = "How would a classifier change an image to make it another class?"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # user errors: a message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
