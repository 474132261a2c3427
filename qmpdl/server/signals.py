"""SIGINT, SIGTERM and SIGHUP as QEMU takes them: the process shuts down cleanly and says
who sent the signal (``terminating on signal 15 from pid 1234 (/usr/sbin/libvirtd)``).

The sender is only known from the signal's ``siginfo``, which Python's handlers do not
see: the three signals are blocked in every thread (threads inherit the mask of the
thread that starts them, so :func:`block_termination_signals` runs first thing) and
one thread takes them with ``sigwaitinfo``.  That thread waits for nothing else: when the
server stops it is woken by :data:`_WAKE`, a real-time signal sent to it alone (it ends
only after taking it, so the exit does not wait for a polling timeout).  SIGKILL needs
nothing: the kernel ends the process, as it ends QEMU's.  Commands that ``exec:``
migration runs inherit the mask.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: ``si_code`` values of signals a process sent (``kill``, ``sigqueue``, ``tgkill``):
#: only those carry a meaningful ``si_pid``.
_SENT_BY_PROCESS = (0, -1, -6)
#: What :meth:`TerminationSignals.remove` sends the waiting thread (a real-time signal no
#: one else sends; blocked with the others, so it is only ever taken by that wait).
_WAKE = signal.SIGRTMIN + 5
_WAITED = (*SIGNALS, _WAKE)


def block_termination_signals() -> None:
    """Block the signals in this thread, and so in every thread it starts later (call it
    before anything starts threads: a thread that does not block them could be the one
    the kernel picks, and the signal's default action would end the process)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)


class TerminationSignals:
    """Calls ``callback(signum, sender_pid)`` on the loop for each termination signal
    (``sender_pid`` 0 when the kernel sent it, as for a terminal's Ctrl-C)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[int, int], None]
    ) -> None:
        self._loop = loop
        self._callback = callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old_mask: set[int | signal.Signals] | None = None

    def install(self) -> None:
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
        self._thread = threading.Thread(
            target=self._bh_wait_for_signals, name="signals", daemon=True
        )
        self._thread.start()

    def _bh_wait_for_signals(self) -> None:
        while True:
            info = signal.sigwaitinfo(_WAITED)
            if info.si_signo == _WAKE:
                if self._stop.is_set():
                    return
                continue
            if info.si_signo not in SIGNALS:
                continue  # (never seen without a timeout; kept as the old guard)
            pid = info.si_pid if info.si_code in _SENT_BY_PROCESS else 0
            self._loop.call_soon_threadsafe(self._callback, info.si_signo, pid)

    def remove(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # the thread ends only once it has taken this: it is alive to receive it
            assert self._thread.ident is not None
            signal.pthread_kill(self._thread.ident, _WAKE)
            self._thread.join()
            self._thread = None
        if self._old_mask is not None:
            # a signal that came after the last wait would take its default action
            # (end the process) once unblocked: the shutdown is under way, drop it
            while signal.sigpending() & set(_WAITED):
                signal.sigtimedwait(_WAITED, 0)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
            self._old_mask = None
