"""Finding and loading the recorded data of a profile (once per file and version).

The files are ``qmpdl/data/qemu-VERSION-NAME.json.gz`` (``qemu-7.2-cpu.json.gz``).
Objects are read with their keys in the reverse of the order QEMU printed them: an
order in which QEMU could have inserted them, so qmpdl's encoder (which lists keys in
QDict order, like QEMU's) prints a recorded value exactly as QEMU did.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from qmpdl.profile import Profile

_PREFIX = "qemu-"
_FILE = re.compile(r"qemu-(\d+)\.(\d+)-.*\.json\.gz")


def file_name(version: str, name: str) -> str:
    """The data file of ``name`` ("cpu.json.gz") recorded from QEMU ``version``."""
    return f"{_PREFIX}{version}-{name}"


@cache
def recorded_versions() -> tuple[tuple[int, int], ...]:
    """The versions with recorded data, oldest first."""
    found = set()
    for entry in resources.files("qmpdl").joinpath("data").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return tuple(sorted(found))


def data_version(profile: Profile) -> str:
    """The version whose data ``profile`` uses: its own, else the nearest earlier one
    that has data (the oldest recorded version for profiles older than all)."""
    versions = recorded_versions()
    if not versions:
        raise FileNotFoundError("no recorded QEMU data in qmpdl/data")
    wanted = profile.version[:2]
    earlier = [v for v in versions if v <= wanted]
    major, minor = earlier[-1] if earlier else versions[0]
    return f"{major}.{minor}"


@cache
def load_version(version: str, name: str) -> Any:
    """The recorded file ``name`` of QEMU ``version`` ("7.2"), read once."""
    path = resources.files("qmpdl").joinpath("data", file_name(version, name))
    return json.loads(gzip.decompress(path.read_bytes()), object_pairs_hook=_as_inserted)


def _as_inserted(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(reversed(pairs))


def load(profile: Profile, name: str) -> Any:
    """The recorded file ``name`` (``"cpu.json.gz"``...) for ``profile``."""
    return load_version(data_version(profile), name)
