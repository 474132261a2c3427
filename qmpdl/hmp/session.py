"""A human monitor on a character device (``-monitor``, ``-mon mode=readline``), no I/O.

Each client is greeted with QEMU's banner and the ``(qemu) `` prompt; bytes go through
the :class:`~qmpdl.hmp.readline.LineEditor`, and a finished line is handed out as a
command.  While a command runs, input waits (QEMU runs the command before it reads the
next byte); its output, then a new prompt, go out when it is done.  The monitor's current
CPU (``cpu N``) and the line history live as long as the monitor, across clients.
"""

from __future__ import annotations

from collections.abc import Sequence

from qmpdl.hmp.command import HmpCommand
from qmpdl.hmp.readline import LineEditor


def _matches(prefix: bytes, table: Sequence[HmpCommand]) -> list[bytes]:
    return [
        name.encode()
        for command in table
        for name in command.names()
        if name.encode().startswith(prefix)
    ]


def _complete(
    words: list[bytes], table: Sequence[HmpCommand], top: Sequence[HmpCommand]
) -> tuple[list[bytes], int]:
    if len(words) <= 1:
        name = words[0] if words else b""
        return _matches(name, table), len(name)
    first = words[0].decode("latin-1")
    command = next((c for c in table if first in c.names()), None)
    if command is None:
        return [], 0
    if command.sub_table:
        return _complete(words[1:], command.sub_table, top)
    if "help" in command.names() and len(words) == 2:
        return _complete(words[1:], top, top)
    return [], 0


def completions(line: bytes, table: Sequence[HmpCommand]) -> tuple[list[bytes], int]:
    """QEMU's ``monitor_find_completion``: command names, ``info`` sub-commands and
    ``help``'s argument; other arguments complete to nothing.  Returns the candidates
    and how much of the word being completed is typed already."""
    words = line.split()
    if not line or line[-1:].isspace():
        words.append(b"")
    return _complete(words, table, table)


class HmpSession:
    """One readline monitor."""

    def __init__(self, version: str, table: Sequence[HmpCommand]) -> None:
        self.version = version
        self.editor = LineEditor(completer=lambda line: completions(line, table))
        self._pending = bytearray()
        #: a command handed out and not finished yet
        self.busy = False
        #: the monitor's current CPU (``cpu N``); None: the first one
        self.cpu_index: int | None = None

    def open(self) -> bytes:
        """A client connected: the banner and the prompt."""
        self._pending.clear()
        self.busy = False
        self.editor.restart()
        banner = f"QEMU {self.version} monitor - type 'help' for more information\r\n"
        return banner.encode() + self.editor.show_prompt()

    def receive(self, data: bytes) -> None:
        self._pending += data

    def pump(self) -> tuple[bytes, str | None]:
        """Feed waiting input until a line is finished; the echo to send and the command
        line (None when no line was finished or a command is still running)."""
        if self.busy:
            return b"", None
        for i, byte in enumerate(self._pending):
            line = self.editor.feed_byte(byte)
            if line is not None:
                del self._pending[: i + 1]
                self.busy = True
                return self.editor.take_output(), line.decode("latin-1")
        self._pending.clear()
        return self.editor.take_output(), None

    def done(self, output: str) -> bytes:
        """The command finished with ``output`` (line ends already ``\\r\\n``): it and a
        new prompt."""
        self.busy = False
        return output.encode("latin-1", errors="replace") + self.editor.show_prompt()
