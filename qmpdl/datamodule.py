"""The source of a generated module that holds data as a JSON text: what ``python -m
qmpdl.qapi.gen`` writes for the schema, the profiles and the machine types
(``json.loads`` builds the data faster than a module of literals would)."""

from __future__ import annotations

_IMPORTS = "from __future__ import annotations\n\nimport json\nfrom typing import Any\n\n"


def raw_text(text: str) -> str:
    """``text`` as a raw triple-quoted Python literal."""
    assert "'''" not in text
    return f"r'''{text}'''"


def json_module(doc: str, body: str) -> str:
    """A module whose docstring is ``doc`` and whose ``body`` may use ``json`` and
    ``Any``."""
    return f'"""{doc}\n"""\n\n{_IMPORTS}{body}'
