"""The base class of every generated QAPI model (:mod:`qmpdl.qapi.types`)."""

from __future__ import annotations

from qmpdl.record import Record


class QapiModel(Record):
    """A QAPI struct, union, command argument set or event payload.

    Models are immutable.  Fields use Python names (``cpu_index``) and accept the
    QAPI names (``cpu-index``) as aliases, so both ``DirtyLimitInfo(cpu_index=0,
    ...)`` and ``DirtyLimitInfo.model_validate({"cpu-index": 0, ...})`` work.
    Unknown fields are refused.
    """
