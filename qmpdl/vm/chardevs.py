"""The character devices as ``query-chardev`` sees them (no I/O: :mod:`qmpdl.server.chardev`
keeps each one's ``filename`` and ``frontend_open`` up to date).

``filename`` is QEMU's: ``pty:/dev/pts/N``, ``stdio``, ``null``, ``file``, and for sockets
the local (and, over TCP, the peer) address while a client is connected -
``unix:PATH,server=on``, ``unix:`` for an unnamed socket, ``tcp:H:P,server=on <-> H:P`` -
or ``disconnected:`` and the address while none is.  ``frontend_open`` is true when a
monitor or a serial port uses the device.

QEMU lists the devices in the reverse of the order in which GLib's hash table of the
``/chardevs`` container's children iterates them; that layout depends only on the
labels in creation order, so it is reproduced with :class:`~qmpdl.qapi.ghash.GStrHashTable`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from qmpdl.qapi.ghash import GStrHashTable


@dataclass
class ChardevState:
    label: str
    filename: str
    frontend_open: bool = False


class ChardevRegistry:
    """Every chardev of the machine, in creation order."""

    def __init__(self) -> None:
        self._states: dict[str, ChardevState] = {}

    def add(self, label: str, filename: str, *, frontend_open: bool = False) -> ChardevState:
        state = ChardevState(label, filename, frontend_open)
        self._states[label] = state
        return state

    def get(self, label: str) -> ChardevState | None:
        return self._states.get(label)

    def __len__(self) -> int:
        return len(self._states)

    def query(self) -> list[ChardevState]:
        """The devices in ``query-chardev`` order."""
        order = list(GStrHashTable(self._states))
        return [self._states[label] for label in reversed(order)]


def _inet(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def socket_filename(
    family: int, local: object, peer: object, *, listening: bool, connected: bool
) -> str:
    """QEMU's name for a socket chardev with these addresses (``getsockname`` and
    ``getpeername`` values as Python gives them)."""
    server = ",server=on" if listening else ""
    if family == socket.AF_UNIX:
        path = local.decode() if isinstance(local, bytes) else str(local or "")
        text = f"unix:{path}{server}"
    elif family in (socket.AF_INET, socket.AF_INET6):
        assert isinstance(local, tuple)
        text = f"tcp:{_inet(local)}{server}"
        if connected:
            assert isinstance(peer, tuple)
            text += f" <-> {_inet(peer)}"
    else:
        text = "unknown"
    return text if connected else f"disconnected:{text}"
