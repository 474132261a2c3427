"""Migration addresses: the URI forms (``tcp:HOST:PORT``, ``unix:PATH``, ``exec:CMD``,
``file:PATH[,offset=N]``, ``fd:NAME``, ``vsock:CID:PORT``, ``rdma:HOST:PORT``) and the
``channels`` form of QEMU 8.2+, parsed with QEMU's texts; opening them.

Parse errors are :class:`QMPError`\\ s raised at once (QEMU's ``socket_parse`` /
``inet_parse`` texts); an unknown protocol is :class:`UnknownProtocolError`, whose text
depends on the version.  Connecting and listening raise :class:`OSError` whose message
is QEMU's (``Failed to connect to '...': ...``, ``Failed to bind socket to ...``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from qmpdl.errors import QMPError
from qmpdl.profile import Profile

Transport = Literal["unix", "tcp", "exec", "file", "fd", "vsock", "rdma"]


class UnknownProtocolError(QMPError):
    """The URI names no migration protocol."""


@dataclass(frozen=True)
class MigrationAddress:
    """One endpoint of a migration stream."""

    transport: Transport
    #: unix: socket path; file: file name; fd: descriptor name
    path: str = ""
    #: tcp, vsock (cid), rdma
    host: str = ""
    port: str = ""
    #: exec: the program and its arguments
    args: tuple[str, ...] = field(default=())
    #: file: where the stream starts
    offset: int = 0

    def describe(self) -> str:
        """How QEMU names the peer in its connection errors."""
        if self.transport in ("tcp", "vsock", "rdma"):
            return f"{self.host}:{self.port}"
        return self.path

    def multi_channel(self) -> bool:
        """Whether the transport can carry several channels (multifd, preempt)."""
        return self.transport in ("tcp", "unix", "vsock")


# ---------------------------------------------------------------------------- parsing


def _inet(text: str) -> tuple[str, str]:
    """QEMU's inet_parse: ``host:port``, ``[v6]:port`` or ``:port`` (options after ``,``
    are accepted and ignored)."""
    if text.startswith("["):
        m = re.match(r"\[([^\]]{1,64})\]:([^,]{1,32})", text)
        if not m:
            raise QMPError(f"error parsing IPv6 address '{text}'")
    elif text.startswith(":"):
        m = re.match(r":()([^,]{1,32})", text)
        if not m:
            raise QMPError(f"error parsing port in address '{text}'")
    else:
        m = re.match(r"([^:]{1,64}):([^,]{1,32})", text)
        if not m:
            raise QMPError(f"error parsing address '{text}'")
    return m.group(1), m.group(2)


def _socket(uri: str, profile: Profile) -> MigrationAddress:
    """QEMU's socket_parse for ``tcp:``/``unix:``/``vsock:``/``fd:`` (before 8.2 an
    ``fd:`` URI is not parsed: the name, even empty, is looked up as it is)."""
    kind, _, rest = uri.partition(":")
    if kind == "fd" and not profile.has("migrate-file-uri"):
        return MigrationAddress("fd", path=rest)
    if kind == "unix":
        if not rest:
            raise QMPError("invalid Unix socket address")
        return MigrationAddress("unix", path=rest)
    if kind == "fd":
        if not rest:
            raise QMPError("invalid file descriptor address")
        return MigrationAddress("fd", path=rest)
    if kind == "vsock":
        m = re.fullmatch(r"(\d+):(\d+)", rest)
        if not m:
            raise QMPError(f"error parsing address '{rest}'")
        return MigrationAddress("vsock", host=m.group(1), port=m.group(2))
    host, port = _inet(rest)
    return MigrationAddress("tcp", host=host, port=port)


def _file(rest: str) -> MigrationAddress:
    name, sep, offset = rest.partition(",offset=")
    if not sep:
        return MigrationAddress("file", path=rest)
    try:
        value = int(offset, 0)
    except ValueError:
        raise QMPError(f"file URI has bad offset {offset}") from None
    return MigrationAddress("file", path=name, offset=value)


def parse_uri(uri: str, profile: Profile, *, incoming: bool = False) -> MigrationAddress:
    """Parse a migration URI; raises :class:`QMPError` (:class:`UnknownProtocolError` when
    the protocol is not one QEMU knows, with the version's text: before 8.2 the
    outgoing side says ``Parameter 'uri' expects a valid migration protocol``)."""
    kind, colon, rest = uri.partition(":")
    if colon:
        if kind == "exec":
            return MigrationAddress("exec", args=("/bin/sh", "-c", rest))
        if kind in ("tcp", "unix", "vsock", "fd"):
            return _socket(uri, profile)
        if kind == "rdma":
            host, port = _inet(rest)
            return MigrationAddress("rdma", host=host, port=port)
        if kind == "file" and profile.has("migrate-file-uri"):
            return _file(rest)
    if incoming or profile.has("migrate-file-uri"):
        raise UnknownProtocolError(f"unknown migration protocol: {uri}")
    raise UnknownProtocolError("Parameter 'uri' expects a valid migration protocol")


def from_channel(addr: object) -> MigrationAddress:
    """The address of a ``MigrationChannel``'s ``addr`` (a bound MigrationAddress)."""
    transport = str(getattr(addr, "transport", ""))
    transport = getattr(getattr(addr, "transport", None), "value", transport)
    if transport == "exec":
        return MigrationAddress("exec", args=tuple(getattr(addr, "args", ())))
    if transport == "file":
        return MigrationAddress(
            "file", path=str(getattr(addr, "filename", "")), offset=int(getattr(addr, "offset", 0))
        )
    if transport == "rdma":
        return MigrationAddress(
            "rdma", host=str(getattr(addr, "host", "")), port=str(getattr(addr, "port", ""))
        )
    kind = getattr(getattr(addr, "type", None), "value", None)
    if kind == "unix":
        return MigrationAddress("unix", path=str(getattr(addr, "path", "")))
    if kind == "fd":
        return MigrationAddress("fd", path=str(getattr(addr, "str", "")))
    if kind == "vsock":
        return MigrationAddress(
            "vsock", host=str(getattr(addr, "cid", "")), port=str(getattr(addr, "port", ""))
        )
    return MigrationAddress(
        "tcp", host=str(getattr(addr, "host", "")), port=str(getattr(addr, "port", ""))
    )


def resolve(
    uri: str | None, channels: Sequence[Any] | None, profile: Profile, *, command: str
) -> MigrationAddress:
    """The address of the ``uri`` / ``channels`` arguments of QEMU 8.2+'s ``migrate`` and
    ``migrate-incoming`` (``command``), with each version's texts."""
    p = profile
    if p.has("migration-channels-need-either"):
        channels = channels or None  # an empty list is NULL in QEMU's C
        if (uri is None) == (channels is None):
            raise QMPError("need either 'uri' or 'channels' argument")
    elif uri is not None and channels is not None:
        raise QMPError(
            "'uri' and 'channels' arguments are mutually exclusive; exactly one of the "
            f"two should be present in '{command}' qmp command "
        )
    elif uri is None and not channels:
        raise QMPError(
            f"neither 'uri' or 'channels' argument are specified in '{command}' qmp command "
        )
    if channels is None:
        assert uri is not None
        return parse_uri(uri, p, incoming=command == "migrate-incoming")
    if not p.has("migration-cpr-transfer"):
        if len(channels) > 1:
            raise QMPError("Channel list has more than one entries")
        return from_channel(channels[0].addr)
    if command == "migrate-incoming" and len(channels) > 1:
        raise QMPError("Channel list must have only one entry, for type 'main'")
    by_type: dict[str, Any] = {}
    for channel in channels:
        kind = str(getattr(channel.channel_type, "value", channel.channel_type))
        if kind in by_type:
            raise QMPError(f"Channel list has more than one {kind} entry")
        by_type[kind] = channel
    if "main" not in by_type:
        raise QMPError("Channel list has no main entry")
    return from_channel(by_type["main"].addr)


def check_transport(address: MigrationAddress, *, multi_channel: bool, seekable: bool) -> None:
    """QEMU's migration_channels_and_transport_compatible."""
    if seekable and address.transport != "file":
        raise QMPError("Migration requires seekable transport (e.g. file)")
    if multi_channel and not address.multi_channel():
        raise QMPError("Migration requires multi-channel URIs (e.g. tcp)")


# ---------------------------------------------------------------------------- channels


class Channel:
    """A byte stream to or from the other side (a socket, a command's pipe, a file)."""

    def __init__(
        self,
        sock: socket.socket | None = None,
        proc: subprocess.Popen[bytes] | None = None,
        fd: int | None = None,
    ) -> None:
        self.sock = sock
        self.proc = proc
        self.fd = fd

    def sendall(self, data: bytes, size: int | None = None) -> None:
        """Write ``data``; ``size`` is what it stands for in the stream (a MARKS
        record's PAGES size: see :mod:`.stream`), which only a scenario's faulty
        channel looks at."""
        if self.sock is not None:
            self.sock.sendall(data)
        elif self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
        else:
            assert self.fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]

    def recv(self, size: int) -> bytes:
        if self.sock is not None:
            return self.sock.recv(size)
        if self.proc is not None:
            assert self.proc.stdout is not None
            return os.read(self.proc.stdout.fileno(), size)
        assert self.fd is not None
        return os.read(self.fd, size)

    @property
    def kind(self) -> str:
        """What QEMU's I/O channel of this transport calls itself in its errors."""
        if self.sock is not None:
            return "socket"
        return "command" if self.proc is not None else "file"

    @property
    def duplex(self) -> bool:
        """Whether the other side can answer (a file or a one-way pipe cannot)."""
        return self.sock is not None

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
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _resolve(host: str, port: str, passive: bool) -> list[tuple[int, tuple[object, ...]]]:
    flags = socket.AI_PASSIVE if passive else 0
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=flags)
    except socket.gaierror as e:
        raise OSError(f"address resolution failed for {host}:{port}: {e.strerror}") from None
    return [(family, addr) for family, _, _, _, addr in found]


def _open_file(path: str, flags: int, qemu_open_texts: bool) -> int:
    """``open(2)`` with QEMU's error text: 9.1+ ``Could not create|open 'PATH': ERR``
    (qemu_create / qemu_open), before ``Unable to open PATH: ERR``."""
    try:
        return os.open(path, flags, 0o600)
    except OSError as e:
        if not qemu_open_texts:
            raise OSError(f"Unable to open {path}: {e.strerror}") from None
        action = "create" if flags & os.O_CREAT else "open"
        raise OSError(f"Could not {action} '{path}': {e.strerror}") from None


def connect(address: MigrationAddress, *, qemu_open_texts: bool = False) -> Channel:
    """The source's connection; raises OSError with QEMU's text as its message."""
    t = address.transport
    if t == "exec":
        try:
            proc = subprocess.Popen(list(address.args), stdin=subprocess.PIPE)
        except OSError as e:
            raise OSError(f"Unable to spawn command: {e.strerror}") from None
        return Channel(proc=proc)
    if t == "file":
        fd = _open_file(address.path, os.O_WRONLY | os.O_CREAT, qemu_open_texts)
        os.ftruncate(fd, address.offset)
        os.lseek(fd, address.offset, os.SEEK_SET)
        return Channel(fd=fd)
    if t == "fd":
        raise OSError(f"File descriptor named '{address.path}' has not been found")
    if t == "rdma":
        raise OSError("RDMA ERROR: could not create CM channel")
    if t == "unix":
        return _connected(socket.AF_UNIX, address.path, address.path)
    if t == "vsock":
        target = (int(address.host), int(address.port))
        return _connected(socket.AF_VSOCK, target, address.describe())
    last: OSError | None = None
    for family, addr in _resolve(address.host, address.port, passive=False):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect(addr)
        except OSError as e:
            sock.close()
            last = e
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Channel(sock)
    reason = last.strerror if last is not None else "No address"
    raise OSError(f"Failed to connect to '{address.describe()}': {reason}")


def _connected(family: int, target: str | tuple[int, int], name: str) -> Channel:
    """A stream socket of ``family`` connected to ``target``; QEMU's text on failure."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.connect(target)
    except OSError as e:
        sock.close()
        raise OSError(f"Failed to connect to '{name}': {e.strerror}") from None
    return Channel(sock)


def listen(address: MigrationAddress) -> list[socket.socket]:
    """The destination's listening sockets: one per address ``tcp:`` resolves to (as
    QEMU listens on each), or the one unix socket.  Other transports have none."""
    if address.transport == "unix":
        # A file left at the path (by a process that died) is removed first, as QEMU
        # does (which also leaves its own behind when it exits).
        try:
            os.unlink(address.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OSError(f"Failed to unlink socket {address.path}: {e.strerror}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
        except OSError as e:
            sock.close()
            raise OSError(f"Failed to bind socket to {address.path}: {e.strerror}") from None
        sock.listen(1)
        return [sock]
    if address.transport != "tcp":
        return []
    socks: list[socket.socket] = []
    error: OSError | None = None
    for family, addr in _resolve(address.host, address.port, passive=True):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(addr)
        except OSError as e:
            sock.close()
            error = e
            continue
        sock.listen(1)
        socks.append(sock)
    if not socks:
        reason = error.strerror if error is not None else "No address"
        raise OSError(f"Failed to find an available port: {reason}")
    return socks


def open_incoming(address: MigrationAddress, *, qemu_open_texts: bool = False) -> Channel | None:
    """The destination's stream for transports that need no listener (``exec:`` reads
    the command's output, ``file:`` the file); None for sockets."""
    if address.transport == "exec":
        try:
            proc = subprocess.Popen(list(address.args), stdout=subprocess.PIPE)
        except OSError as e:
            raise OSError(f"Unable to spawn command: {e.strerror}") from None
        return Channel(proc=proc)
    if address.transport == "file":
        fd = _open_file(address.path, os.O_RDONLY, qemu_open_texts)
        os.lseek(fd, address.offset, os.SEEK_SET)
        return Channel(fd=fd)
    if address.transport == "fd":
        raise OSError(f"File descriptor named '{address.path}' has not been found")
    if address.transport in ("rdma", "vsock"):
        raise OSError(f"incoming migration from {address.transport}: is not supported")
    return None
