"""Ctrl-C (SIGINT) and SIGTERM: one way out of a command, whatever it was doing, with exit code 128 + the signal.

While Dagster executes a run it swaps in its own handlers (it turns the signal into DagsterExecutionInterruptedError
at its next checkpoint, and takes SIGTERM for SIGINT). The wakeup fd still hears every signal, so once the run
returns `raise_if_received` tells that it was interrupted, and by which signal. Light on imports: the console
script enters it before the heavy modules load.
"""

from __future__ import annotations

import _thread
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVERY_DELAY = 0.05  # seconds
_wakeup: list[socket.socket] = []  # the read ends of the active contexts' wakeup sockets, innermost last


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. A KeyboardInterrupt, so code that stops on Ctrl-C stops on it too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.stage = "starting"  # how far the run got: starting, running or finished (set by the runner)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# What an interrupted run leaves, by how far it got (facts land per source batch, derived periods are replaced in
# one transaction, cursors move only after their records landed: README, "Stopping a run").
KEPT = {
    "starting": "interrupted before the run started: nothing was loaded",
    "running": "interrupted: the records loaded so far are kept and the scores are rewritten by the next run",
    "finished": "interrupted as the run finished: everything was written",
}


def interrupted_line(interrupted: Interrupted, again: str) -> str:
    return f"{KEPT[interrupted.stage]} — re-running `{again}` is safe"


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted inside the block (a signal the parent ignores stays ignored: a
    background job of a shell script); the previous handlers are back afterwards."""
    reader, writer = socket.socketpair()
    for end in (reader, writer):
        end.setblocking(False)
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver(sys.unraisablehook)
    _wakeup.append(reader)
    try:
        for signum, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, _raise)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        sys.unraisablehook = previous_hook
        _wakeup.pop()
        reader.close()
        writer.close()


def _redeliver(hook):
    """A signal whose exception was raised in a finalizer (a weakref callback, __del__) would be lost, Python only
    prints it: the signal comes again, for the code that runs next."""

    def unraisable(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, Exception) or unraisable.exc_value is None:
            hook(unraisable)
        else:  # KeyboardInterrupt, or Dagster's DagsterExecutionInterruptedError: a BaseException from a handler
            signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
            # from another thread, a moment later: the main thread would run the handler inside this hook
            threading.Timer(REDELIVERY_DELAY, _thread.interrupt_main, [signum]).start()

    return unraisable


def raise_if_received() -> None:
    """Raise Interrupted for the first SIGINT or SIGTERM received since the last call, whoever handled it."""
    if not _wakeup:
        return
    received = b""
    try:
        while chunk := _wakeup[-1].recv(64):
            received += chunk
    except BlockingIOError:
        pass
    for signum in received:
        if signum in SIGNALS:
            raise Interrupted(signum)
