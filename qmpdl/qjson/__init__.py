"""QEMU's JSON dialect, byte for byte: a streaming parser and the encoder (sans I/O).

* :class:`JsonStreamer` turns the bytes a QMP client sends into messages exactly as QEMU
  7.2's lexer, streamer and parser do: parsed values, or :class:`ParseFailure` with QEMU's
  ``desc`` text.
* :func:`to_json` / :func:`encode_message` print values as QEMU's JSON writer and monitor
  do, with QDict key order (:func:`qdict_order`, :func:`tdb_hash`).

Modules: :mod:`.lexer` (bytes to tokens), :mod:`.parser` (tokens to a value),
:mod:`.streamer` (message boundaries, limits, lazy consumption), :mod:`.fastpath` (the
common case via Python's C JSON scanner), :mod:`.encoder`, :mod:`.qdict` (key order) and
:mod:`.utf8` (QEMU's modified UTF-8).
"""

from qmpdl.qjson.encoder import encode_message, to_json
from qmpdl.qjson.errors import JSON_NULL, JsonNull, ParseFailure
from qmpdl.qjson.qdict import qdict_order, tdb_hash
from qmpdl.qjson.streamer import (
    MAX_NESTING,
    MAX_TOKEN_COUNT,
    MAX_TOKEN_SIZE,
    JsonStreamer,
    Message,
)

__all__ = [
    "JSON_NULL",
    "MAX_NESTING",
    "MAX_TOKEN_COUNT",
    "MAX_TOKEN_SIZE",
    "JsonNull",
    "JsonStreamer",
    "Message",
    "ParseFailure",
    "encode_message",
    "qdict_order",
    "tdb_hash",
    "to_json",
]
