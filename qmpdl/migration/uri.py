"""Migration URIs (``tcp:HOST:PORT``, ``unix:PATH``, ``exec:CMD``, ``file:PATH``) and
opening them, with QEMU's texts."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import Literal

from qmpdl.errors import QMPError
from qmpdl.profile import Profile


@dataclass(frozen=True)
class MigrationAddress:
    transport: Literal["unix", "tcp", "exec", "file"]
    #: unix: the socket path; file: the file name; exec: the shell command
    path: str = ""
    host: str = ""
    port: int = 0

    def describe(self) -> str:
        """How QEMU names the peer in its connection errors."""
        if self.transport == "tcp":
            return f"{self.host}:{self.port}"
        return self.path


def parse_uri(uri: str, profile: Profile) -> MigrationAddress:
    """Parse ``uri``; an unknown protocol gives the profile's text."""
    kind, colon, rest = uri.partition(":")
    if colon:
        if kind == "unix" and rest:
            return MigrationAddress("unix", path=rest)
        if kind == "exec":
            return MigrationAddress("exec", path=rest)
        if kind == "file" and profile.has("migrate-file-uri"):
            return MigrationAddress("file", path=rest.split(",offset=")[0])
        if kind == "tcp":
            host, _, port = rest.rpartition(":")
            if not port.isdigit() or not host:
                raise QMPError(f"error parsing address '{rest}'")
            return MigrationAddress("tcp", host=host.strip("[]"), port=int(port))
    if profile.has("migrate-file-uri"):
        raise QMPError(f"unknown migration protocol: {uri}")
    raise QMPError("Parameter 'uri' expects a valid migration protocol")


class Channel:
    """A byte stream to or from the other side (a socket, or a command's pipe)."""

    def __init__(
        self, sock: socket.socket | None = None, proc: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.sock = sock
        self.proc = proc

    def sendall(self, data: bytes) -> None:
        if self.sock is not None:
            self.sock.sendall(data)
        else:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(data)

    def recv(self, size: int) -> bytes:
        if self.sock is not None:
            return self.sock.recv(size)
        assert self.proc is not None and self.proc.stdout is not None
        return os.read(self.proc.stdout.fileno(), size)

    def shutdown(self) -> None:
        """Make blocked sends and receives return (migrate_cancel)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        elif self.proc is not None:
            self.proc.kill()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.proc is not None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            self.proc.wait()


def connect(address: MigrationAddress) -> Channel:
    """The source's connection; raises OSError with QEMU's text as its message."""
    try:
        if address.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address.path)
            return Channel(sock)
        if address.transport == "tcp":
            sock = socket.create_connection((address.host, address.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return Channel(sock)
        if address.transport == "exec":
            proc = subprocess.Popen(
                ["/bin/sh", "-c", address.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            return Channel(proc=proc)
    except OSError as e:
        raise OSError(f"Failed to connect to '{address.describe()}': {e.strerror}") from None
    raise OSError(f"migration to {address.transport}: is not supported")


def listen(address: MigrationAddress) -> socket.socket:
    """The destination's listening socket (unix or tcp)."""
    if address.transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address.path)
    elif address.transport == "tcp":
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
    else:
        raise OSError(f"incoming migration from {address.transport}: is not supported")
    sock.listen(1)
    return sock
