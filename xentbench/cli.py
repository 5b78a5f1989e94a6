"""The ``xentbench`` command: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: sub-command -> module of this package; each module has ``add_arguments(parser)``
#: and ``run(args) -> int`` (the exit code), and its docstring's first line is the help.
COMMANDS = {
    "verify": "xentbench.verify",
    "bench": "xentbench.bench", "compare": "xentbench.compare",
    "report": "xentbench.report", "conformance": "xentbench.conformance", "gate": "xentbench.gate",
    "warm": "xentbench.warm", "history": "xentbench.gate.history",
}


def find_modules_here() -> None:
    """Put the current folder first on ``sys.path``, as ``python -m`` does and the console script
    does not, so that ``--backend mysoftmax`` finds ``./mysoftmax.py``; not under ``python -P`` or
    ``PYTHONSAFEPATH``, as ``python -m``."""
    here = os.getcwd()
    if not sys.flags.safe_path and here not in sys.path:
        sys.path.insert(0, here)


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``xentbench`` parser and, by sub-command, its parser and module (the documentation's
    command reference is made from them, ``docs/_ext/xentbench_commands.py``)."""
    parser = argparse.ArgumentParser(prog="xentbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, path in COMMANDS.items():
        module = importlib.import_module(path)
        p = sub.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        commands[name] = (p, module)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    find_modules_here()
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    return commands[args.command][1].run(args)


if __name__ == "__main__":
    sys.exit(main())
