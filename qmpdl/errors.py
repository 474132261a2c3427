"""The root of qmpdl's exceptions, and the one a command raises to answer with an error.

Every exception class in qmpdl derives from :class:`QmpdlError` (``tests/test_layers.py``
checks it), so ``except QmpdlError`` catches whatever qmpdl raises on purpose and
nothing it did not mean to.  :class:`QMPError` is the one that reaches a client: a QMP
error class plus QEMU's exact text.
"""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal[
    "GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound", "KVMMissingCap"
]


class QmpdlError(Exception):
    """Any error qmpdl raises on purpose (the subclasses say which layer and why)."""


class QMPError(QmpdlError):
    """An error that becomes ``{"error": {"class": ..., "desc": ...}}`` on the wire.

    ``desc`` must be QEMU's text byte for byte; ``error_class`` is one of QAPI's
    ``QapiErrorClass`` names (almost always ``GenericError``).
    """

    def __init__(self, desc: str, error_class: ErrorClass = "GenericError") -> None:
        super().__init__(desc)
        self.desc = desc
        self.error_class: ErrorClass = error_class

    def __repr__(self) -> str:
        return f"QMPError({self.desc!r}, {self.error_class!r})"


class MessageError(QmpdlError):
    """An error QEMU reports as text: ``message`` is that text (without a newline)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(MessageError):
    """The machine cannot be built or a device cannot be opened: QEMU's text, and the
    option it is about (None: the text says it all).  The process exits with it."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location
