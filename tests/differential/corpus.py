"""The exchange scripts of the differential suite (``corpus/*.json``).

Each file is one group: a JSON list of :class:`qmpdl.tools.exchange.Script` objects whose
``group`` is the file's name without ``.json``, so every file can also be given to
``qmpdl-diff`` as it is.  A script's ``name`` is its case name in the goldens and in
``intended.py``; names are unique over the whole corpus.  A script with ``since`` (a
behaviour QEMU 7.2 lacks) is played only on the oracles that have it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from qmpdl.tools.exchange import Script, load_scripts

CORPUS_DIR = Path(__file__).with_name("corpus")


def corpus_files() -> list[Path]:
    """The group files, in name order."""
    return sorted(CORPUS_DIR.glob("*.json"))


@cache
def load_corpus() -> tuple[Script, ...]:
    """Every script, file by file in name order, each file's scripts in file order."""
    scripts: list[Script] = []
    for path in corpus_files():
        scripts += load_scripts(path)
    return tuple(scripts)


def scripts_for(version: str) -> list[Script]:
    """The scripts played on QEMU ``version`` (those whose ``since`` it reaches)."""
    return [script for script in load_corpus() if script.applies_to(version)]


def by_name() -> dict[str, Script]:
    return {script.name: script for script in load_corpus()}


def case_names() -> list[str]:
    return [script.name for script in load_corpus()]
