"""The process model: ``-daemonize``, ``-pidfile`` and the exit status, as QEMU's.

``-daemonize`` forks right after the command line is read (before any thread or socket
exists): the launching process waits on a pipe and exits 0 only when the daemon reports
that every device is open and the machine built, 1 if the daemon fails before that (its
error goes to the same stderr).  The daemon starts a new session, forks again, sets
``umask 027``; once ready it changes to ``/``, points stdin, stdout and (unless ``-D``
sends the trace elsewhere) stderr at ``/dev/null``, and reports.

``-pidfile`` is written by the process that serves (the daemon's), created ``0600``,
locked with ``fcntl`` for the life of the process (a second qmpdl on the same file fails
with QEMU's text), and removed at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys

from qmpdl import report
from qmpdl.config import MachineConfig
from qmpdl.errors import QmpdlError


class PidFileError(QmpdlError):
    """QEMU's text after ``cannot create PID file: ``."""


def write_pidfile(path: str) -> int:
    """Create, lock and fill the pid file (QEMU's ``qemu_write_pidfile``); returns its
    descriptor, to be kept open as long as the lock should hold."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise PidFileError(f"Could not create '{path}': {e.strerror}") from None
        try:
            before = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            raise PidFileError(f"Cannot stat file: {e.strerror}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise PidFileError(f"Cannot lock pid file: {e.strerror}") from None
        # the path must still name the file that was locked (another process may have
        # removed or replaced it meanwhile)
        try:
            now = os.stat(path)
        except OSError:
            os.close(fd)
            continue
        if now.st_ino == before.st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
    except OSError as e:
        os.unlink(path)
        os.close(fd)
        raise PidFileError(f"Failed to truncate pid file: {e.strerror}") from None
    text = f"{os.getpid()}\n".encode()
    if os.write(fd, text) != len(text):
        os.unlink(path)
        os.close(fd)
        raise PidFileError("Failed to write pid file")
    return fd


class Daemon:
    """The daemon side of ``-daemonize``: reports readiness to the launching process."""

    def __init__(self, pipe: int, keep_stderr: bool) -> None:
        self._pipe = pipe
        self._keep_stderr = keep_stderr

    @classmethod
    def start(cls, keep_stderr: bool) -> Daemon:
        """Fork; the launching process never returns from here."""
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() > 0:
            os.close(write)
            status = b""
            while True:
                try:
                    status = os.read(read, 1)
                    break
                except InterruptedError:
                    continue
            # only a daemon that said it is ready makes the launch a success
            os._exit(0 if status == b"\0" else 1)
        os.close(read)
        os.set_inheritable(write, False)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.umask(0o027)
        for signum in (signal.SIGTSTP, signal.SIGTTOU, signal.SIGTTIN):
            signal.signal(signum, signal.SIG_IGN)
        return cls(write, keep_stderr)

    def ready(self) -> None:
        """Every device is open: detach from the terminal and let the launcher exit 0."""
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(null, 0)
        os.dup2(null, 1)
        if not self._keep_stderr:
            os.dup2(null, 2)
        os.close(null)
        os.write(self._pipe, b"\0")
        os.close(self._pipe)


def run(config: MachineConfig) -> int:
    """Serve ``config`` with QEMU's process model; returns the exit status."""
    from qmpdl.errors import ConfigError
    from qmpdl.server.app import serve

    daemon = Daemon.start(keep_stderr=config.trace_file is not None) if config.daemonize else None
    pidfile: str | None = None
    pid_fd: int | None = None
    try:
        if config.pidfile is not None:
            try:
                pid_fd = write_pidfile(config.pidfile)
            except PidFileError as e:
                report.error(f"cannot create PID file: {e}")
                return 1
            try:
                pidfile = os.path.realpath(config.pidfile, strict=True)
            except OSError as e:
                report.error(f"cannot get PID file real path: {e.strerror}")
                return 1
        try:
            return asyncio.run(serve(config, on_ready=daemon.ready if daemon else None))
        except ConfigError as e:
            report.error(e.message, e.location)
            return 1
        except KeyboardInterrupt:
            return 0
    finally:
        if pidfile is not None:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
        if pid_fd is not None:
            os.close(pid_fd)
