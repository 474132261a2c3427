"""qmpdl's migration stream: our own format (not QEMU's), documented here, without I/O.

Everything is little-endian.  A stream is a header, records, and an end mark::

    header   b"QMPDLMIG" u32 version=1, u32 page_size, u64 ram_size, u32 nr_vcpus,
             u32 json_len, json (the source's machine description, checked by the
             destination)
    PAGES    u8 1, u32 n, n x u64 entry, then 4096 bytes for every entry without the
             ZERO bit, in order.  entry = page number | ZERO (bit 63) for an all-zero
             page, whose bytes are not sent (QEMU's "duplicate" pages)
    PASS     u8 2, u32 pass, u64 pages, u32 crc: the end of one pass over the dirty
             pages; ``crc`` is the CRC-32 of every PAGES record of the pass (header
             and data) and ``pages`` their entry count, so the destination checks the
             pass arrived intact
    STATE    u8 3, u32 json_len, json: device (vCPU) state, sent once, after the VM
             stopped and the last pages went
    END      u8 4
    SYNC     u8 5, f64 time: sent only by a source on a virtual clock (qmpdl.vtime),
             after what it sent up to the time it has been delivered, and once right
             before END: the destination's clock catches up with ``time`` (a virtual
             one moves to it) and, on a two-way connection, it answers one byte 0 once
             it has loaded everything before (the source waits for it, so a step of
             its clock returns with the destination caught up)
    MARKS    u8 6, u32 n, u32 m, u32 crc of the 8 bytes before, n x u64 entry, m bytes:
             PAGES of synthetic memory (simulated vCPUs), sent by a source on a virtual
             clock: every page without the ZERO bit is its first byte followed by 4095
             zeros, and only that byte is sent (the m bytes, in order).  It counts as
             the PAGES record it stands for (5 + 8 n + 4096 m bytes) in the source's
             statistics and rate limiting; its size is known from its own checked
             header, so damage anywhere in it fails the pass's CRC, never the framing

The destination answers on the same connection with one byte after END: 0 when it
loaded everything (the source may then complete), else 1 followed by u32 len and an
error text (the source fails with it).  After a stream with SYNC records it answers
END once the guest has started, so the source completes after the destination has.

:class:`StreamWriter` turns records into bytes; :class:`StreamReader` takes bytes in any
chunking and returns records, checking each pass's CRC.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from qmpdl.backend.base import PAGE_SIZE
from qmpdl.errors import QmpdlError

MAGIC = b"QMPDLMIG"
VERSION = 1
ZERO = np.uint64(1 << 63)

REC_PAGES = 1
REC_PASS = 2
REC_STATE = 3
REC_END = 4
REC_SYNC = 5
REC_MARKS = 6

#: Longest machine description or device state accepted (a damaged length would
#: otherwise have the destination buffer gigabytes before failing).
MAX_JSON = 1 << 20

_HEADER = struct.Struct("<8sIIQII")
_PASS = struct.Struct("<IQI")
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_MARKS = struct.Struct("<III")


class StreamError(QmpdlError):
    """The stream is not what it should be; the text says what was wrong."""


def _json_object(text: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:  # (bad UTF-8 as well)
        raise StreamError(f"the {what} is damaged") from None
    if not isinstance(value, dict):
        raise StreamError(f"the {what} is damaged")
    return value


@dataclass(frozen=True)
class Header:
    page_size: int
    ram_size: int
    nr_vcpus: int
    machine: dict[str, Any]


@dataclass(frozen=True)
class Pages:
    """One PAGES record: page numbers, which are zero, and the non-zero pages' bytes
    (a MARKS record: ``data`` is empty and ``marks`` holds the non-zero pages' first
    bytes, the rest of each page being zeros)."""

    pages: npt.NDArray[np.uint64]
    zero: npt.NDArray[np.bool_]
    data: bytes
    marks: npt.NDArray[np.uint8] | None = None


@dataclass(frozen=True)
class Sync:
    """The source's clock: what came before was delivered by ``time``."""

    time: float


@dataclass(frozen=True)
class PassEnd:
    number: int
    pages: int


@dataclass(frozen=True)
class State:
    state: dict[str, Any]


@dataclass(frozen=True)
class End:
    pass


Record = Header | Pages | PassEnd | State | End | Sync


class StreamWriter:
    """Encodes records, keeping the running CRC of the current pass."""

    def __init__(self) -> None:
        self._crc = 0
        self._pages = 0

    def header(self, ram_size: int, nr_vcpus: int, machine: dict[str, Any]) -> bytes:
        text = json.dumps(machine, sort_keys=True).encode()
        return _HEADER.pack(MAGIC, VERSION, PAGE_SIZE, ram_size, nr_vcpus, len(text)) + text

    def pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> bytes:
        """One PAGES record; ``data`` holds the non-zero pages, in order."""
        entries = pages.astype(np.uint64) | np.where(zero, ZERO, np.uint64(0))
        if len(data) != int((~zero).sum()) * PAGE_SIZE:
            raise ValueError("page data does not match the non-zero pages")
        record = bytes([REC_PAGES]) + _U32.pack(len(pages)) + entries.astype("<u8").tobytes()
        record += data
        self._crc = zlib.crc32(record, self._crc)
        self._pages += len(pages)
        return record

    def marks(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], marks: npt.NDArray[Any]
    ) -> tuple[bytes, int]:
        """One MARKS record (``marks``: every page's first byte, zero pages' ignored) and
        the size of the PAGES record it stands for."""
        entries = pages.astype(np.uint64) | np.where(zero, ZERO, np.uint64(0))
        values = np.asarray(marks, dtype=np.uint8)[~zero]
        head = _U32.pack(len(pages)) + _U32.pack(len(values))
        record = (
            bytes([REC_MARKS])
            + head
            + _U32.pack(zlib.crc32(head))
            + entries.astype("<u8").tobytes()
            + values.tobytes()
        )
        self._crc = zlib.crc32(record, self._crc)
        self._pages += len(pages)
        return record, 5 + 8 * len(pages) + PAGE_SIZE * len(values)

    def sync(self, time: float) -> bytes:
        return bytes([REC_SYNC]) + _F64.pack(time)

    def pass_end(self, number: int) -> bytes:
        record = bytes([REC_PASS]) + _PASS.pack(number, self._pages, self._crc)
        self._crc = 0
        self._pages = 0
        return record

    def state(self, state: dict[str, Any]) -> bytes:
        text = json.dumps(state, sort_keys=True).encode()
        return bytes([REC_STATE]) + _U32.pack(len(text)) + text

    def end(self) -> bytes:
        return bytes([REC_END])


class StreamReader:
    """Decodes a stream fed in arbitrary chunks; raises :class:`StreamError` (and only
    that) for anything that is not a stream of a machine: records are checked against
    the header's RAM size and lengths against :data:`MAX_JSON` before anything is
    buffered for them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._have_header = False
        self._ram_pages = 0
        self._ended = False
        self._crc = 0
        self._pages = 0

    def feed(self, data: bytes) -> None:
        if self._pos > 1 << 20:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def ended(self) -> bool:
        return self._ended

    def _take(self, n: int) -> bytes | None:
        if len(self._buf) - self._pos < n:
            return None
        chunk = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return chunk

    def _peek_len(self) -> int:
        return len(self._buf) - self._pos

    def records(self) -> Iterator[Record]:
        """Every record complete in the buffer."""
        while True:
            record = self._next()
            if record is None:
                return
            yield record

    def _next(self) -> Record | None:
        if self._ended:
            if self._peek_len():
                raise StreamError("data after the end of the stream")
            return None
        if not self._have_header:
            if self._peek_len() < _HEADER.size:
                return None
            magic, version, page_size, ram, nvcpus, jlen = _HEADER.unpack_from(self._buf, self._pos)
            if magic != MAGIC:
                raise StreamError("not a qmpdl migration stream")
            if version != VERSION:
                raise StreamError(f"unsupported stream version {version}")
            if page_size != PAGE_SIZE:
                raise StreamError(f"unsupported page size {page_size}")
            if jlen > MAX_JSON:
                raise StreamError("the machine description is damaged")
            if self._peek_len() < _HEADER.size + jlen:
                return None
            self._pos += _HEADER.size
            text = self._take(jlen)
            assert text is not None
            self._have_header = True
            self._ram_pages = ram // PAGE_SIZE
            return Header(page_size, ram, nvcpus, _json_object(text, "machine description"))
        if not self._peek_len():
            return None
        kind = self._buf[self._pos]
        if kind == REC_PAGES:
            if self._peek_len() < 5:
                return None
            (n,) = _U32.unpack_from(self._buf, self._pos + 1)
            if n > self._ram_pages:
                raise StreamError(f"a record of {n} pages in {self._ram_pages} pages of RAM")
            head = 5 + 8 * n
            if self._peek_len() < head:
                return None
            entries = np.frombuffer(self._buf, dtype="<u8", count=n, offset=self._pos + 5).astype(
                np.uint64
            )
            zero = (entries & ZERO) != 0
            if n and int((entries & ~ZERO).max()) >= self._ram_pages:
                raise StreamError(f"a page beyond the end of RAM ({self._ram_pages} pages)")
            size = head + int((~zero).sum()) * PAGE_SIZE
            if self._peek_len() < size:
                return None
            record = self._take(size)
            assert record is not None
            self._crc = zlib.crc32(record, self._crc)
            self._pages += n
            return Pages(entries & ~ZERO, zero, record[head:])
        if kind == REC_MARKS:
            if self._peek_len() < 1 + _MARKS.size:
                return None
            n, m, check = _MARKS.unpack_from(self._buf, self._pos + 1)
            if check != zlib.crc32(bytes(self._buf[self._pos + 1 : self._pos + 9])):
                raise StreamError("a page record arrived damaged")
            if n > self._ram_pages or m > n:
                raise StreamError(f"a record of {n} pages in {self._ram_pages} pages of RAM")
            size = 1 + _MARKS.size + 8 * n + m
            if self._peek_len() < size:
                return None
            record = self._take(size)
            assert record is not None
            head = 1 + _MARKS.size
            entries = np.frombuffer(record, dtype="<u8", count=n, offset=head).astype(np.uint64)
            zero = (entries & ZERO) != 0
            if n and int((entries & ~ZERO).max()) >= self._ram_pages:
                raise StreamError(f"a page beyond the end of RAM ({self._ram_pages} pages)")
            self._crc = zlib.crc32(record, self._crc)
            self._pages += n
            if int((~zero).sum()) != m:
                # (the pass's CRC would say so too; the pages cannot be stored first)
                raise StreamError("a page record arrived damaged")
            marks = np.frombuffer(record, dtype=np.uint8, count=m, offset=head + 8 * n)
            return Pages(entries & ~ZERO, zero, b"", marks)
        if kind == REC_SYNC:
            if self._peek_len() < 1 + _F64.size:
                return None
            (time,) = _F64.unpack_from(self._buf, self._pos + 1)
            if not math.isfinite(time) or time < 0:
                raise StreamError("the source's clock arrived damaged")
            self._pos += 1 + _F64.size
            return Sync(time)
        if kind == REC_PASS:
            if self._peek_len() < 1 + _PASS.size:
                return None
            number, pages, crc = _PASS.unpack_from(self._buf, self._pos + 1)
            self._pos += 1 + _PASS.size
            if pages != self._pages or crc != self._crc:
                raise StreamError(
                    f"pass {number} arrived damaged ({self._pages} of {pages} pages, "
                    f"checksum {self._crc:08x} instead of {crc:08x})"
                )
            self._crc = 0
            self._pages = 0
            return PassEnd(number, pages)
        if kind == REC_STATE:
            if self._peek_len() < 5:
                return None
            (n,) = _U32.unpack_from(self._buf, self._pos + 1)
            if n > MAX_JSON:
                raise StreamError("the device state is damaged")
            if self._peek_len() < 5 + n:
                return None
            self._pos += 5
            text = self._take(n)
            assert text is not None
            return State(_json_object(text, "device state"))
        if kind == REC_END:
            self._pos += 1
            self._ended = True
            return End()
        raise StreamError(f"unknown record type {kind}")
