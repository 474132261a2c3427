"""The one error type every layer raises: a QMP error class plus QEMU's exact text."""

from __future__ import annotations

from typing import Literal

ErrorClass = Literal[
    "GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound", "KVMMissingCap"
]


class QMPError(Exception):
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
