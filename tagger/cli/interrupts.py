"""How a genre-tag run stops early: Ctrl-C (SIGINT), SIGTERM and a closed standard output
each end it with one line on stderr and an exit status of their own, never a traceback.

Until a command's action runs (Python's imports, reading the options) nothing has been
written, so a signal ends genre-tag at once. While the action runs, SIGINT raises
``KeyboardInterrupt`` and SIGTERM ``Terminated`` (a ``KeyboardInterrupt``), so that the
run puts its finished outputs in place on the way out; further signals are ignored until
it has. Standard library only: ``tagger.cli`` imports this module before anything else,
and in the genre-tag program (not in a program that imports ``tagger.cli``) it takes the
signals over at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE
EXIT_TERMINATED = 143  # 128 + SIGTERM
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``), raised where Ctrl-C would be, so that a terminated
    run cleans up as an interrupted one does."""


def stop_line(stop: KeyboardInterrupt) -> tuple[str, int]:
    """The line on stderr and the exit status of a run stopped by ``stop``."""
    if isinstance(stop, Terminated):
        return "genre-tag: terminated", EXIT_TERMINATED
    return "genre-tag: interrupted", EXIT_INTERRUPTED


def _already_stopping(signal_number: int, frame: FrameType | None) -> None:
    """A signal after the first: the run is already on its way out."""


def ignore_stop_signals() -> None:
    """Let further signals pass. A handler, not SIG_IGN: processes started meanwhile (a
    pool's replacement worker) would inherit SIG_IGN, and SIGTERM could not end them."""
    for number in STOP_SIGNALS:
        signal.signal(number, _already_stopping)


def _exit_at_once(signal_number: int, frame: FrameType | None) -> NoReturn:
    ignore_stop_signals()
    line, status = stop_line(Terminated() if signal_number == signal.SIGTERM
                             else KeyboardInterrupt())
    with contextlib.suppress(OSError):  # stderr closed too: the status says it
        os.write(2, f"{line}\n".encode())
    raise SystemExit(status)


def is_the_program() -> bool:
    """Whether this process is the ``genre-tag`` command (its script, or ``python -m
    tagger``), not a program that imports ``tagger.cli`` nor one of its worker processes
    (which import it again, with its arguments)."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.current_process().name != "MainProcess":
        return False
    started_as = Path(sys.argv[0] if sys.argv else "")
    return started_as.stem.startswith("genre-tag") or started_as.parts[-2:] == (
        "tagger", "__main__.py")


def exit_at_once_on_signals() -> None:
    """Until the command's action runs: SIGINT and SIGTERM end the process at once, with
    their line and status."""
    if threading.current_thread() is threading.main_thread():
        for number in STOP_SIGNALS:
            signal.signal(number, _exit_at_once)


@contextlib.contextmanager
def signals_raised() -> Iterator[None]:
    """While the action runs: the first SIGINT raises ``KeyboardInterrupt``, the first
    SIGTERM ``Terminated``; the signals after it are ignored, so that they cannot break off
    the clean-up. The handlers before are put back on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signal_number: int, frame: FrameType | None) -> NoReturn:
        ignore_stop_signals()
        raise Terminated if signal_number == signal.SIGTERM else KeyboardInterrupt

    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def stop_writing_standard_output() -> None:
    """Point standard output at the null device, so that what is still buffered for it
    cannot fail again at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if is_the_program():
    exit_at_once_on_signals()
