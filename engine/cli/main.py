"""Argument parsing and dispatch for `python main.py <command>`.

Errors a user can fix (bad input, unknown model or site, unreadable file) print one line,
`error: ...`, and exit with code 2; no traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys

from engine.cli import decoder_cmds, explain_cmds, flow_cmds, model_cmds, patch_cmds, probed_cmds, query_cmds
from engine.cli.printing import printable


class UsageError(Exception):
    """A flag or value argparse refused; main() prints it as the usual one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block before its error; the house rule is one line naming
    what was wrong and what is allowed, so the error names the command's --help instead."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: python {self.prog} --help)")


def package_version() -> str:
    """The installed package's version, or (a checkout run without installing) pyproject.toml's."""
    from importlib import metadata
    from pathlib import Path

    try:
        return metadata.version("inversionview-studio")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, ValueError, KeyError):
            return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="main.py",
        description="InversionView Studio: what does an activation inside a transformer encode? "
                    "Without a command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"InversionView Studio {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    model_cmds.add_parsers(sub)
    probed_cmds.add_parsers(sub)
    decoder_cmds.add_parsers(sub)
    query_cmds.add_parsers(sub)
    flow_cmds.add_parsers(sub)
    patch_cmds.add_parsers(sub)
    explain_cmds.add_parsers(sub)
    return parser


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (tests replace it)."""

    def emit(self, record) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _warnings_to_stderr() -> None:
    """The engine's warnings (a weights conversion, say) reach the terminal too, one line each."""
    logger = logging.getLogger("engine")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)


def error_line(e: BaseException) -> str:
    return f"error: {printable(str(e))}"


# What a shell reports for a process stopped by SIGPIPE: `query ... | head -1` reads one line and
# closes the pipe; the rest of the output has no reader, which is no error of the command's.
BROKEN_PIPE_EXIT = 128 + 13


def _quiet_broken_pipe() -> int:
    """Point stdout at /dev/null so that the interpreter's last flush finds nothing to complain about."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # a stdout without a file descriptor (a test's capture): nothing to flush
        pass
    return BROKEN_PIPE_EXIT


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from engine.errors import USER_ERRORS
    from engine.logs import setup_logging

    setup_logging()
    _warnings_to_stderr()
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """The `inversionview` console entry point."""
    sys.exit(main())
