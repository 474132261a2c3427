"""A scripted stand-in for the QMP side of the monitor."""

from __future__ import annotations

from dataclasses import dataclass, field

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue


@dataclass
class FakeQmp:
    """Answers QMP calls from canned replies and records every call.

    ``replies`` maps a command name to its return value, or to a :class:`QMPError` to
    raise.  A command without a reply returns ``{}``.
    """

    replies: dict[str, JsonValue | QMPError] = field(default_factory=dict)
    calls: list[tuple[str, JsonObject]] = field(default_factory=list)

    def __call__(self, name: str, arguments: JsonObject) -> JsonValue:
        self.calls.append((name, arguments))
        reply = self.replies.get(name, {})
        if isinstance(reply, QMPError):
            raise reply
        return reply

    def names(self) -> list[str]:
        """The names of the commands called so far, in order."""
        return [name for name, _ in self.calls]


@dataclass
class ScriptedQmp:
    """Expects exactly the calls of a recorded script, in order, and replays their results.

    Each entry is ``{"execute": name, "arguments": {...}}`` plus either ``"return"`` or
    ``"error": {"class": ..., "desc": ...}``.
    """

    script: list[JsonObject]
    position: int = 0

    def __call__(self, name: str, arguments: JsonObject) -> JsonValue:
        assert self.position < len(self.script), f"unexpected call {name} {arguments}"
        entry = self.script[self.position]
        self.position += 1
        assert (name, arguments) == (entry["execute"], entry["arguments"])
        error = entry.get("error")
        if isinstance(error, dict):
            desc = error["desc"]
            assert isinstance(desc, str) and error["class"] == "GenericError"
            raise QMPError(desc)
        return entry["return"]

    def finished(self) -> bool:
        """True when every scripted call was made."""
        return self.position == len(self.script)


@dataclass
class ScriptedMemory:
    """Guest memory that answers exactly the recorded reads, in order.

    Each entry is ``{"addr": A, "size": N, "data": HEX}``: the monitor must ask for
    ``N`` bytes at ``A`` and gets ``data`` (the readable start of the range).
    """

    reads: list[JsonObject]
    position: int = 0

    def __call__(self, addr: int, size: int) -> bytes:
        assert self.position < len(self.reads), f"unexpected read of {size} bytes at {addr:#x}"
        entry = self.reads[self.position]
        self.position += 1
        assert (addr, size) == (entry["addr"], entry["size"])
        data = entry["data"]
        assert isinstance(data, str)
        return bytes.fromhex(data)

    def finished(self) -> bool:
        """True when every recorded read was made."""
        return self.position == len(self.reads)
