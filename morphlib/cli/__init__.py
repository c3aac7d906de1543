"""``morphlib <command>`` (the installed command) or ``python -m morphlib <command>``.

One module per command in this package; each exposes ``add_command(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code).  The
command modules import only the standard library at the top, so that ``--help`` is instant;
the library is imported when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from morphlib import __version__

#: Modules that provide commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "morphlib.cli.morph",
    "morphlib.cli.atlas",
    "morphlib.cli.train",
    "morphlib.cli.evaluate",
    "morphlib.cli.study",
)
#: Where the method is explained (the help texts point to it).
METHOD_DOC = "docs/method.md"

__all__ = ["COMMAND_MODULES", "HelpFormatter", "build_parser", "main"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (paragraphs, lists), and every option's default that is a value."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text
        return f"{text} (default: %(default)s)" if shown and action.option_strings else text


def build_parser() -> argparse.ArgumentParser:
    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    prog = "morphlib" if command in ("morphlib", "morphlib.exe") else "python -m morphlib"
    description = (
        "How would a classifier change an image to make it another class?\n\n"
        f"The method and its settings: {METHOD_DOC} in the repository."
    )
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
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
    except ValueError as err:  # user errors (ImageError, ModelUnavailableError...): one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
