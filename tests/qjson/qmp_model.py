"""Just enough of QEMU's QMP layer to turn parse results into wire replies for the corpus.

Models the monitor in negotiation mode: parse errors, "QMP input must be a JSON object",
the request checks of ``qmp_dispatch`` (in QDict order), the negotiation-mode
CommandNotFound, and ``qmp_capabilities`` before and after negotiation.  Anything else
raises :class:`UnmodelledError`, so the corpus cannot silently depend on unmodelled behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable

from qmpdl.jsontypes import JsonObject
from qmpdl.qjson import JsonStreamer, Message, ParseFailure, encode_message, qdict_order


class UnmodelledError(Exception):
    """The corpus case needs QMP behaviour this model does not have."""


def _error(desc: str, error_class: str = "GenericError") -> JsonObject:
    return {"error": {"class": error_class, "desc": desc}}


class QmpModel:
    """One QMP connection's replies, from the JSON layer's messages."""

    def __init__(self) -> None:
        self.negotiated = False

    def respond(self, message: Message) -> JsonObject:
        if isinstance(message, ParseFailure):
            return _error(message.desc)
        if type(message) is not dict:
            return _error("QMP input must be a JSON object")
        reply = self._dispatch(message)
        if "id" in message:
            reply["id"] = message["id"]
        return reply

    def _dispatch(self, request: JsonObject) -> JsonObject:
        exec_key = None
        for key in qdict_order(list(request)):
            value = request[key]
            if key == "execute":
                if type(value) is not str:
                    return _error(f"QMP input member '{key}' must be a string")
                exec_key = key
            elif key == "arguments":
                if type(value) is not dict:
                    return _error("QMP input member 'arguments' must be an object")
            elif key == "id":
                continue
            else:
                # Also "exec-oob": out-of-band execution was not enabled.
                return _error(f"QMP input member '{key}' is unexpected")
        if exec_key is None:
            return _error("QMP input lacks member 'execute'")
        command = request["execute"]
        if request.get("arguments"):
            raise UnmodelledError(f"arguments for {command}")
        if command != "qmp_capabilities":
            if self.negotiated:
                raise UnmodelledError(f"command {command} after negotiation")
            return _error(
                "Expecting capabilities negotiation with 'qmp_capabilities'", "CommandNotFound"
            )
        if self.negotiated:
            return _error(
                "Capabilities negotiation is already complete, command ignored",
                "CommandNotFound",
            )
        self.negotiated = True
        return {"return": {}}


def replies(
    data: bytes,
    pretty: bool = False,
    chunks: Iterable[int] = (),
    *,
    fast_path: bool = True,
) -> list[bytes]:
    """The reply messages QEMU sends for ``data`` on a fresh connection.

    ``chunks`` lists the sizes of successive feeds (the rest is fed at once); messages are
    taken out after every feed, as a server would.
    """
    streamer = JsonStreamer(fast_path=fast_path)
    model = QmpModel()
    out: list[bytes] = []

    def drain() -> None:
        while (message := streamer.next_message()) is not None:
            out.append(encode_message(model.respond(message), pretty))

    pos = 0
    for size in chunks:
        streamer.feed(data[pos : pos + size])
        pos += size
        drain()
    streamer.feed(data[pos:])
    drain()
    return out
