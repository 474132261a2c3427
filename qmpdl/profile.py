"""Version profiles: which QEMU qmpdl impersonates.

A profile is a name, a version triple, a package string and the set of behaviour
features (``data/features.toml``) whose ``since`` version it reaches.  Code never compares
version numbers itself; it asks ``profile.has("feature-name")``.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Feature(BaseModel):
    """One behaviour that appeared in a given QEMU version."""

    model_config = ConfigDict(frozen=True)

    name: str
    since: tuple[int, int]
    doc: str


class Profile(BaseModel):
    """The QEMU version qmpdl answers as."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: tuple[int, int, int]
    package: str
    #: "binary" (checked against that QEMU binary) or "sources" (read from its sources)
    checked: Literal["binary", "sources"]
    description: str
    features: frozenset[str]

    def has(self, feature: str) -> bool:
        """True when this QEMU version has the behaviour ``feature``."""
        if feature not in known_features():
            raise KeyError(f"unknown profile feature {feature!r}")
        return feature in self.features


def _load(name: str) -> dict[str, object]:
    text = resources.files("qmpdl").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _since(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@cache
def known_features() -> dict[str, Feature]:
    """Every feature of ``data/features.toml`` by name."""
    table = _load("features.toml")["features"]
    assert isinstance(table, dict)
    return {
        name: Feature(name=name, since=_since(row["since"]), doc=row["doc"])
        for name, row in table.items()
    }


@cache
def _profiles() -> tuple[str, dict[str, Profile]]:
    data = _load("profiles.toml")
    default = data["default"]
    table = data["profiles"]
    assert isinstance(default, str) and isinstance(table, dict)
    features = known_features()
    profiles: dict[str, Profile] = {}
    for name, row in table.items():
        version = tuple(row["version"])
        assert len(version) == 3
        profiles[name] = Profile(
            name=name,
            version=(version[0], version[1], version[2]),
            package=row["package"],
            checked=row["checked"],
            description=row["description"],
            features=frozenset(f.name for f in features.values() if version[:2] >= f.since),
        )
    return default, profiles


def profile_names() -> list[str]:
    """Names accepted by ``--qemu-version``, oldest first."""
    return sorted(_profiles()[1], key=lambda n: _profiles()[1][n].version)


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name`` (the default when ``None``: the newest behaviour
    checked against a binary)."""
    default, profiles = _profiles()
    try:
        return profiles[name or default]
    except KeyError:
        raise ValueError(
            f"unknown QEMU version {name!r} (known: {', '.join(profile_names())})"
        ) from None
