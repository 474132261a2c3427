"""The human monitor's line editor, as a client on a socket sees it (no I/O).

QEMU's monitor edits the line itself and echoes it: after every byte it redraws what
changed - the cursor goes back to the start of the line (``ESC [ D`` per column), the
whole line is printed, the rest of the screen line is cleared (``ESC [ K``), and the
cursor is moved to its column (``ESC [ C`` / ``ESC [ D``).  Keys: printable bytes insert,
Backspace (0x7f, 0x08) and Ctrl-D/``ESC [ 3 ~`` delete, Ctrl-A/Home and Ctrl-E/End move to
the ends, ``ESC [ C``/``ESC [ D`` move, Ctrl-W deletes a word, ``ESC [ A``/``ESC [ B``
walk a history of 64 lines, Tab completes, CR or LF ends the line.  Text is bytes: what
the client sent is what is echoed, ``\\n`` goes out as ``\\r\\n``.
"""

from __future__ import annotations

from collections.abc import Callable

#: Longest line (QEMU's READLINE_CMD_BUF_SIZE is 4096, with room for the NUL).
CMD_BUF_SIZE = 4095
MAX_HISTORY = 64
MAX_COMPLETIONS = 256

_NORM, _ESC, _CSI, _SS3 = range(4)

#: Completion: the line up to the cursor -> (candidates, how many bytes of the word
#: being completed are already typed).
Completer = Callable[[bytes], tuple[list[bytes], int]]


def _isspace(byte: int) -> bool:
    return byte in b" \t\n\v\f\r"


class LineEditor:
    """One monitor's line editor; its history outlives a client's connection."""

    def __init__(self, prompt: bytes = b"(qemu) ", completer: Completer | None = None) -> None:
        self.prompt = prompt
        self.completer = completer
        self.buf = bytearray()
        self.index = 0
        self.last_buf = bytearray()
        self.last_index = 0
        self.state = _NORM
        self.esc_param = 0
        self.history: list[bytes] = []
        #: the history entry being edited, -1 for a new line
        self.hist_entry = -1
        self._out = bytearray()

    # ------------------------------------------------------------------ output

    def _print(self, data: bytes) -> None:
        self._out += data.replace(b"\n", b"\r\n")

    def take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def show_prompt(self) -> bytes:
        """Print the prompt (a new line starts)."""
        self._print(self.prompt)
        self.last_buf.clear()
        self.last_index = 0
        self.state = _NORM
        return self.take_output()

    def restart(self) -> None:
        """Forget the line being edited (QEMU's ``readline_restart``)."""
        self.buf.clear()
        self.index = 0

    def _update(self) -> None:
        if self.buf != self.last_buf:
            self._print(b"\x1b[D" * self.last_index + bytes(self.buf) + b"\x1b[K")
            self.last_buf = bytearray(self.buf)
            self.last_index = len(self.buf)
        if self.index != self.last_index:
            delta = self.index - self.last_index
            self._print((b"\x1b[C" if delta > 0 else b"\x1b[D") * abs(delta))
            self.last_index = self.index

    # ------------------------------------------------------------------ editing

    def _insert(self, byte: int) -> None:
        if self.index < CMD_BUF_SIZE:
            self.buf.insert(self.index, byte)
            self.index += 1

    def _delete(self) -> None:
        if self.index < len(self.buf):
            del self.buf[self.index]

    def _backspace(self) -> None:
        if self.index > 0:
            self.index -= 1
            self._delete()

    def _backword(self) -> None:
        if self.index == 0 or self.index > len(self.buf):
            return
        start = self.index - 1
        while start > 0 and _isspace(self.buf[start]):
            start -= 1
        while start > 0:
            if _isspace(self.buf[start]):
                start += 1
                break
            start -= 1
        if start < self.index:
            del self.buf[start : self.index]
            self.index = start

    def _up(self) -> None:
        if self.hist_entry == 0:
            return
        if self.hist_entry == -1:
            self.hist_entry = len(self.history)
        self.hist_entry -= 1
        if self.hist_entry >= 0:
            self.buf = bytearray(self.history[self.hist_entry])
            self.index = len(self.buf)

    def _down(self) -> None:
        if self.hist_entry == -1:
            return
        if self.hist_entry < MAX_HISTORY - 1 and self.hist_entry + 1 < len(self.history):
            self.hist_entry += 1
            self.buf = bytearray(self.history[self.hist_entry])
        else:
            self.buf = bytearray()
            self.hist_entry = -1
        self.index = len(self.buf)

    def _hist_add(self, line: bytes) -> None:
        if not line:
            return
        if line in self.history:
            # an earlier entry (or the one being edited) moves to the end
            self.history.remove(line)
        elif len(self.history) == MAX_HISTORY:
            del self.history[0]
        self.history.append(line)
        self.hist_entry = -1

    def _complete(self) -> None:
        if self.completer is None:
            return
        found, typed = self.completer(bytes(self.buf[: self.index]))
        found = found[:MAX_COMPLETIONS]
        if not found:
            return
        if len(found) == 1:
            for byte in found[0][typed:]:
                self._insert(byte)
            if found[0] and not found[0].endswith(b"/"):
                self._insert(ord(" "))
            return
        self._print(b"\n")
        prefix = min(len(c) for c in found)
        for candidate in found[1:]:
            for j in range(prefix):
                if candidate[j] != found[0][j]:
                    prefix = j
                    break
        for byte in found[0][typed:prefix]:
            self._insert(byte)
        width = min(max(max(len(c) for c in found) + 2, 10), 80)
        columns = 80 // width
        for i, candidate in enumerate(found):
            self._print(candidate.ljust(width))
            if (i + 1) % columns == 0 or i == len(found) - 1:
                self._print(b"\n")
        self._print(self.prompt)
        self.last_buf.clear()
        self.last_index = 0
        self.state = _NORM

    # ------------------------------------------------------------------ input

    def feed_byte(self, byte: int) -> bytes | None:
        """Handle one input byte; returns the finished line when it ends one (its echo
        and the line end are in :meth:`take_output`)."""
        line: bytes | None = None
        if self.state == _NORM:
            if byte == 1:
                self.index = 0
            elif byte == 4:
                self._delete()
            elif byte == 5:
                self.index = len(self.buf)
            elif byte == 9:
                self._complete()
            elif byte in (10, 13):
                line = bytes(self.buf)
                self._hist_add(line)
                self._print(b"\n")
                self.buf.clear()
                self.index = 0
                self.last_buf.clear()
                self.last_index = 0
            elif byte == 23:
                self._backword()
            elif byte == 27:
                self.state = _ESC
            elif byte in (127, 8):
                self._backspace()
            elif byte == 155:
                self.state = _CSI
            elif byte >= 32:
                self._insert(byte)
        elif self.state == _ESC:
            if byte == ord("["):
                self.state, self.esc_param = _CSI, 0
            elif byte == ord("O"):
                self.state, self.esc_param = _SS3, 0
            else:
                self.state = _NORM
        elif self.state == _CSI:
            if ord("0") <= byte <= ord("9"):
                self.esc_param = self.esc_param * 10 + byte - ord("0")
            else:
                if byte in b"AF":
                    self._up()
                elif byte in b"BE":
                    self._down()
                elif byte == ord("D"):
                    self.index = max(self.index - 1, 0)
                elif byte == ord("C"):
                    self.index = min(self.index + 1, len(self.buf))
                elif byte == ord("~"):
                    if self.esc_param == 1:
                        self.index = 0
                    elif self.esc_param == 3:
                        self._delete()
                    elif self.esc_param == 4:
                        self.index = len(self.buf)
                self.state = _NORM
        else:  # SS3
            if byte == ord("F"):
                self.index = len(self.buf)
            elif byte == ord("H"):
                self.index = 0
            self.state = _NORM
        if line is None:
            self._update()
        return line
