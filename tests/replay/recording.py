"""The libvirt 9.0 recordings (``../shared/anchors/libvirt-9.0``), parsed by
:mod:`qmpdl.tools.libvirtlog`."""

from __future__ import annotations

from pathlib import Path

from qmpdl.tools.libvirtlog import Exchange, Session, parse, with_sent
from tests.anchors.traces import ANCHORS, required

__all__ = ["Exchange", "Session", "anchors_dir", "domain_argv", "domain_session", "load"]

LIBVIRT = ANCHORS / "libvirt-9.0"


def anchors_dir() -> Path:
    """The recordings; skip without them, unless QMPDL_REQUIRE_ANCHORS=1."""
    return required(LIBVIRT, "libvirt recordings")


def load(name: str) -> list[Session]:
    """``a-probe-real-x86_64``, ``b-start-real``, ``c-real`` or ``d-real``."""
    directory = anchors_dir()
    sessions = parse(directory / f"{name}.qmp.txt")
    sent = directory / f"{name}.sent.jsonl"
    return with_sent(sessions, sent) if sent.exists() else sessions


def domain_session() -> Session:
    """The domain's monitor connection: libvirt started it (``b``), then ran the
    virsh commands of ``c`` and ``d`` on the same connection; ``d`` ends with
    ``destroy`` (SIGTERM)."""
    parts = [s for name in ("b-start-real", "c-real", "d-real") for s in load(name)]
    return Session([e for part in parts for e in part.exchanges], parts[-1].trailing_events)


def domain_argv() -> list[str]:
    """The emulator command line libvirt built for ``dom-real.xml`` (without the
    binary and the log lines after it)."""
    text = (anchors_dir() / "domain-argv.txt").read_text()
    argv: list[str] = []
    for line in text.splitlines():
        if not line.startswith(("/", "-")):
            break
        words = line.rstrip(" \\")
        option, _, value = words.partition(" ")
        argv.append(option)
        if value:
            argv.append(value.strip("'"))
    return argv[1:]
