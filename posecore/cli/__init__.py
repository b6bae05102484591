"""The `posecore` command line: one module per subcommand.

Each subcommand module defines `register(subparsers)`, which adds its parser and sets
`func` to a function taking the parsed arguments and returning an exit code. To add a
subcommand, write its module here, list it in `SUBCOMMANDS` and add a test in tests/cli/.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import posecore
from posecore import __version__
from posecore.errors import PosecoreError
from posecore.hugepages import restart_with_huge_pages

SUBCOMMANDS = ("synth", "train", "evaluate", "predict", "outliers", "label_video", "calibrate", "triangulate")


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="posecore", description=posecore.__doc__)
    parser.add_argument("--version", action="version", version=f"posecore {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"posecore.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input ends with its message on stderr and exit code 2.

    Started as a command (argv None), it first restarts itself once with glibc's malloc on huge
    pages (`posecore.hugepages`), which makes inference on the CPU 1.5 to 1.7 times as fast.
    """
    if argv is None:
        restart_with_huge_pages(["-m", "posecore", *sys.argv[1:]])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PosecoreError as error:
        print(f"posecore: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
