"""Generate :mod:`qmpdl.qapi.types`, :mod:`qmpdl.qapi.types_deferred` and
:mod:`qmpdl.qapi.schema_data` (the definitions as Python data, read at start-up) from the
schema, :mod:`qmpdl.profile_data` from the profiles' TOML files and
:mod:`qmpdl.cmdline.machine_data` from the recorded QEMU data: ``python -m
qmpdl.qapi.gen``.

The commands and events in :data:`DEFERRED_ROOTS` (what libvirt's capability probe,
domain start and statistics use) have many types of their own; building their models
would cost every start-up tens of milliseconds although most runs never call them.
The classes only they reach go to ``types_deferred.py``, which nothing imports before
one of them runs (:mod:`qmpdl.qapi.models` finds a class in either module).

``--check`` exits with status 1 (and writes nothing) when a checked-in file differs
from what the schema produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qmpdl.cmdline.machine import render_machine_data
from qmpdl.profile import OPTION_FEATURES, get_profile, profile_names, render_profile_data
from qmpdl.qapi.load import expressions, render_schema_data, source_schema_for
from qmpdl.qapi.pymodels import render_models
from qmpdl.qapi.schema import Schema

TYPES_PATH = Path(__file__).with_name("types.py")
SCHEMA_DATA_PATH = Path(__file__).with_name("schema_data.py")
PROFILE_DATA_PATH = Path(__file__).parent.parent / "profile_data.py"
MACHINE_DATA_PATH = Path(__file__).parent.parent / "cmdline" / "machine_data.py"
DEFERRED_PATH = Path(__file__).with_name("types_deferred.py")

#: Commands and events whose models are imported on first use.
DEFERRED_ROOTS = (
    "POWERDOWN",
    "RESET",
    "set-action",
    "query-block",
    "query-blockstats",
    "query-named-block-nodes",
    "query-tpm-models",
    "query-tpm-types",
    "qom-list",
    "qom-get",
    "qom-list-types",
    "qom-list-properties",
    "device-list-properties",
    "query-machines",
    "query-target",
    "query-uuid",
    "system_reset",
    "system_powerdown",
    "query-hotpluggable-cpus",
    "query-cpu-model-expansion",
    "query-cpu-definitions",
    "query-name",
    "query-iothreads",
    "query-command-line-options",
    "query-sev-capabilities",
    "query-sgx-capabilities",
    "query-stats",
    "query-stats-schemas",
)

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


def generate() -> tuple[str, str]:
    """The sources of ``types.py`` and ``types_deferred.py`` for every known profile."""
    schemas: dict[str, Schema] = {
        name: source_schema_for(get_profile(name)) for name in profile_names()
    }
    # what options add (qmpdl's own commands), on the newest version
    newest = get_profile(profile_names()[-1])
    schemas["+options"] = source_schema_for(newest.with_features(*OPTION_FEATURES))
    core, deferred = render_models(schemas, definition_order(), DEFERRED_ROOTS)
    assert deferred is not None
    return core, deferred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmpdl.qapi.gen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    parser.add_argument("--output", type=Path, default=TYPES_PATH, help="where to write")
    parser.add_argument(
        "--deferred-output", type=Path, default=DEFERRED_PATH, help="where the deferred go"
    )
    args = parser.parse_args(argv)
    status = 0
    outputs = [*zip((args.output, args.deferred_output), generate(), strict=True)]
    if args.output == TYPES_PATH:
        outputs.append((SCHEMA_DATA_PATH, render_schema_data()))
        outputs.append((PROFILE_DATA_PATH, render_profile_data()))
        outputs.append((MACHINE_DATA_PATH, render_machine_data()))
    for path, source in outputs:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == source:
            continue
        if args.check:
            print(f"{path} is out of date; run python -m qmpdl.qapi.gen", file=sys.stderr)
            status = 1
        else:
            path.write_text(source, encoding="utf-8")
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
