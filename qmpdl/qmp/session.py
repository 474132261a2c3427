"""The QMP protocol state of one client connection, without any I/O.

In the manner of h11: the transport feeds bytes in with :meth:`MonitorSession.receive_data`
and asks what happened with :meth:`MonitorSession.pump`; replies and events go out as the
bytes :meth:`MonitorSession.encode` returns.  Nothing here reads a socket, sleeps or
spawns a task.

What it models is QEMU's monitor (monitor/qmp.c), which reads its input one byte at a
time and stops reading while it is *suspended*:

* every complete JSON value (or parse error) is a request;
* a request object with ``exec-oob`` (and no ``execute``) runs at once, out of band,
  even before negotiation enabled OOB (it then fails with "member 'exec-oob' is
  unexpected");
* everything else joins this monitor's in-band queue.  Without OOB the monitor is
  suspended after each queued request and resumed after its reply, so requests are
  strictly one at a time.  With OOB the queue holds up to eight: pushing the eighth
  suspends, popping it resumes;
* bytes that arrive while suspended stay buffered, unparsed, until resumed.

Negotiation: until ``qmp_capabilities`` succeeds, only that command exists (see
:mod:`qmpdl.qmp.dispatch`) and no events are sent.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qjson import JsonNull, JsonStreamer, ParseFailure, encode_message

#: QEMU's QMP_REQ_QUEUE_LEN_MAX.
QUEUE_LEN_MAX = 8


class Mode(enum.Enum):
    """Which command set the monitor answers with."""

    NEGOTIATION = "negotiation"
    COMMAND = "command"


@dataclass
class InBandRequest:
    """A queued request: a parsed value, or the parse error to answer in its place."""

    #: (a top-level ``null`` is the streamer's :class:`JsonNull`)
    value: JsonValue | JsonNull = None
    error: ParseFailure | None = None
    #: whether OOB was enabled when the dispatcher took it (decides when to resume)
    oob_enabled_at_pop: bool = field(default=False, compare=False)


@dataclass
class OutOfBandRequest:
    """An ``exec-oob`` request, to be answered immediately."""

    value: JsonObject


def is_oob_request(value: object) -> bool:
    """QEMU's test for a request that bypasses the queue."""
    return isinstance(value, dict) and "exec-oob" in value and "execute" not in value


class MonitorSession:
    """One QMP connection's protocol state."""

    def __init__(self, greeting: JsonObject, *, oob_offered: bool, pretty: bool = False) -> None:
        self._greeting = greeting
        self.oob_offered = oob_offered
        self.pretty = pretty
        self.mode = Mode.NEGOTIATION
        self.oob_enabled = False
        self._streamer = JsonStreamer()
        self._queue: deque[InBandRequest] = deque()
        self._suspended = 0

    # ------------------------------------------------------------------ input

    @property
    def suspended(self) -> bool:
        """True while the monitor does not read input (the transport may pause reading)."""
        return self._suspended > 0

    @property
    def negotiated(self) -> bool:
        return self.mode is Mode.COMMAND

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client; nothing is parsed until :meth:`pump`."""
        self._streamer.feed(data)

    def pump(self) -> list[OutOfBandRequest]:
        """Parse buffered input as far as the monitor reads it.

        In-band requests are queued (see :meth:`pop_in_band`); the out-of-band ones
        found on the way are returned, in order, to be dispatched immediately.
        """
        oob: list[OutOfBandRequest] = []
        while not self.suspended:
            message = self._streamer.next_message()
            if message is None:
                break
            if isinstance(message, ParseFailure):
                self._enqueue(InBandRequest(error=message))
            elif is_oob_request(message):
                assert isinstance(message, dict)
                oob.append(OutOfBandRequest(message))
            else:
                self._enqueue(InBandRequest(value=message))
        return oob

    def _enqueue(self, request: InBandRequest) -> None:
        if not self.oob_enabled or len(self._queue) == QUEUE_LEN_MAX - 1:
            self._suspended += 1
        self._queue.append(request)

    # ------------------------------------------------------------------ dispatching

    @property
    def has_in_band(self) -> bool:
        return bool(self._queue)

    def peek_in_band(self) -> InBandRequest | None:
        """The oldest queued request, left in the queue."""
        return self._queue[0] if self._queue else None

    def pop_in_band(self) -> InBandRequest | None:
        """The dispatcher takes the oldest queued request (QEMU resumes a full OOB queue
        right away, so OOB commands keep flowing while it runs)."""
        if not self._queue:
            return None
        request = self._queue.popleft()
        request.oob_enabled_at_pop = self.oob_enabled
        if self.oob_enabled and len(self._queue) == QUEUE_LEN_MAX - 1:
            self._resume()
        return request

    def in_band_done(self, request: InBandRequest) -> None:
        """The reply to ``request`` was sent; without OOB the monitor reads again."""
        if not request.oob_enabled_at_pop:
            self._resume()

    def _resume(self) -> None:
        if self._suspended > 0:
            self._suspended -= 1

    def negotiate(self, enable_oob: bool) -> None:
        """``qmp_capabilities`` succeeded: switch to command mode."""
        self.mode = Mode.COMMAND
        self.oob_enabled = enable_oob

    def reset(self) -> None:
        """The client went away: drop queued requests and buffered input."""
        self._queue.clear()
        self._streamer.reset()
        self._suspended = 0

    # ------------------------------------------------------------------ output

    def greeting_bytes(self) -> bytes:
        return self.encode(self._greeting)

    def encode(self, message: JsonObject) -> bytes:
        """One reply or event as QEMU writes it (compact or pretty, ``\\r\\n`` line ends)."""
        return encode_message(message, self.pretty)

    def wants_event(self) -> bool:
        """Events go only to monitors that completed negotiation."""
        return self.mode is Mode.COMMAND
