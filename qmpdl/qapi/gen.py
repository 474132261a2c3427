"""Generate :mod:`qmpdl.qapi.types` from the schema: ``python -m qmpdl.qapi.gen``.

``--check`` exits with status 1 (and writes nothing) when the checked-in file
differs from what the schema produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qmpdl.profile import get_profile, profile_names
from qmpdl.qapi.load import expressions, schema_for
from qmpdl.qapi.pymodels import render_models
from qmpdl.qapi.schema import Schema

TYPES_PATH = Path(__file__).with_name("types.py")

_META_KEYS = ("enum", "struct", "union", "alternate", "command", "event")


def definition_order() -> list[str]:
    """Every defined name, in schema source order, once."""
    names: list[str] = []
    for expression in expressions():
        for key in _META_KEYS:
            name = expression.expr.get(key)
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def generate() -> str:
    """The source of ``types.py`` for every known profile."""
    schemas: dict[str, Schema] = {name: schema_for(get_profile(name)) for name in profile_names()}
    return render_models(schemas, definition_order())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmpdl.qapi.gen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    parser.add_argument("--output", type=Path, default=TYPES_PATH, help="where to write")
    args = parser.parse_args(argv)
    source = generate()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != source:
            print(f"{args.output} is out of date; run python -m qmpdl.qapi.gen", file=sys.stderr)
            return 1
        return 0
    if current != source:
        args.output.write_text(source, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
