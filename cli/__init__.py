"""The one command-line vocabulary of every entry point (sweeps and analysis commands):
the parser whose errors are one line with exit code 2, every option defined once
(`cli.options`), and how a command ends when it is stopped (Ctrl-C, SIGTERM) or the disk
is full (`clean_exit`). Nothing here imports torch, opens data or writes the environment:
``--help`` and bad input are answered before any of that.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

MAX_PARALLEL = 1024  # --jobs, --threads, ...: more is a typo, not a machine


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) and exit code 2, and
    which never guesses an abbreviated option. The options of `cli.options.OPTIONS` it holds
    (``picked``: name -> takes one value here) are checked when it parses."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.picked: dict[str, bool] = {}

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: Any = None) -> argparse.Namespace:
        from cli.options import finish
        parsed = super().parse_args(args, namespace)
        try:
            finish(parsed, self.picked)
        except UsageError as err:
            self.error(str(err))
        return parsed

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) arrived: unwinds the stack like Ctrl-C, so the
    ``finally`` blocks on the way out stop worker processes and remove temporary files."""

    @property
    def signum(self) -> int:
        return self.args[0] if self.args else signal.SIGINT


def _stop(signum: int, frame: Any) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the clean-up on the way out is not interrupted
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the machine's problem, not a bug to trace back


@contextlib.contextmanager
def clean_exit(prog: str, stopped_note: str = "") -> Iterator[None]:
    """Run a command's work so that it ends with ONE line on stderr, never a traceback, when
    it is stopped or the disk fails it: Ctrl-C or SIGTERM (from ``kill``, ``timeout``, a batch
    scheduler) exit with 128 + the signal (130, 143) after the way out has stopped the
    workers; a full or read-only disk exits with 1. ``stopped_note`` tells the user what is
    kept (e.g. how to resume)."""
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Stopped) else signal.SIGINT
        print(f"{prog}: stopped by {signal.Signals(signum).name}{stopped_note}", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except OSError as err:
        if err.errno not in DISK_ERRORS:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(f"{prog}: error: {err.strerror or err}{where}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def parse_value(text: str) -> Any:
    """``"1e-3"`` -> 0.001, ``"1,2,4"`` -> (1, 2, 4), ``"adam"`` -> ``"adam"``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def check_device(name: str) -> Any:
    """A usable torch device, or `UsageError` naming what is available (imports torch: a
    command's check after parsing)."""
    import torch
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"device {name} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= count:
            raise UsageError(f"device {name} does not exist (this machine has {count} CUDA device(s))")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    return device
