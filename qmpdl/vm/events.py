"""QMP events: built once, delivered to every monitor that finished negotiation."""

from __future__ import annotations

import threading
from collections.abc import Callable

from qmpdl.clock import Clock
from qmpdl.jsontypes import JsonObject

EventListener = Callable[[JsonObject], None]


class EventBus:
    """Fans events out to listeners (one per connected monitor).

    An event is ``{"event": NAME, "timestamp": {"seconds", "microseconds"}, "data": ...}``
    in QEMU's insertion order (the encoder orders keys as QEMU prints them); ``data`` is
    absent for events without members.  Listeners may be called from any thread and
    must hand the event to their connection's own thread.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._listeners: list[EventListener] = []

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def build(self, name: str, data: JsonObject | None = None) -> JsonObject:
        micros = int(self.clock.wall() * 1_000_000)
        event: JsonObject = {
            "event": name,
            "timestamp": {"seconds": micros // 1_000_000, "microseconds": micros % 1_000_000},
        }
        if data is not None:
            event["data"] = data
        return event

    def emit(self, name: str, data: JsonObject | None = None) -> None:
        event = self.build(name, data)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
