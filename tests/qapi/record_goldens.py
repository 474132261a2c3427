"""Record real QEMU's answers for the QAPI tests: ``python -m tests.qapi.record_goldens``.

Writes, for each oracle VERSION (7.2 and 10.0; ``--version V`` for one), from one
``qemu-system-x86_64 -accel kvm,dirty-ring-size=4096 -machine none``:

* ``golden/qemu-VERSION-validation.json``: for every case of :mod:`tests.qapi.cases`
  the raw reply line, or ``"ok"`` when the command succeeded;
* ``golden/qemu-VERSION-schema.json``: the ``query-qmp-schema`` entries reachable
  from the commands and events qmpdl serves as that version (QEMU's own numbering,
  wire key order), plus the order of those commands in ``query-commands``.

The offline tests compare qmpdl with these files; the tests marked ``qemu``
re-record and compare, so a stale golden fails there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import get_profile
from qmpdl.qapi import QapiSchema
from qmpdl.tools.qemu import ORACLES, QemuProcess
from qmpdl.tools.rawqmp import RawQMP
from tests.qapi.cases import Case, all_cases
from tests.qapi.live import connect

GOLDEN_DIR = Path(__file__).with_name("golden")


def validation_path(version: str) -> Path:
    return GOLDEN_DIR / f"qemu-{version}-validation.json"


def schema_path(version: str) -> Path:
    return GOLDEN_DIR / f"qemu-{version}-schema.json"


def load_schema_golden(version: str) -> dict[str, list[JsonValue]]:
    data = json.loads(schema_path(version).read_text(encoding="ascii"))
    assert isinstance(data, dict)
    return data


def outcome(line: bytes) -> str:
    """The recorded form of a reply: the raw line, or "ok" for a success."""
    text = line.decode("ascii").rstrip("\r\n")
    return "ok" if text.startswith('{"return"') else text


def record_cases(qmp: RawQMP, cases: list[Case]) -> list[dict[str, object]]:
    """Send every case and collect the outcomes."""
    rows: list[dict[str, object]] = []
    for case in cases:
        request = json.dumps({"execute": case.command, "arguments": case.arguments})
        reply = qmp.command(request.encode("ascii"))
        rows.append(
            {
                "schema": case.schema,
                "command": case.command,
                "arguments": case.arguments,
                "reply": outcome(reply),
            }
        )
    return rows


def reachable(entries: list[JsonObject], roots: list[str]) -> list[JsonObject]:
    """The entries reachable from ``roots``, in the order QEMU lists them."""
    by_name = {str(e["name"]): e for e in entries}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        entry = by_name[name]
        refs: list[JsonValue] = [entry.get(k) for k in ("arg-type", "ret-type", "element-type")]
        for key in ("members", "variants"):
            items = entry.get(key, [])
            assert isinstance(items, list)
            refs += [item.get("type") for item in items if isinstance(item, dict)]
        todo += [r for r in refs if isinstance(r, str)]
    return [e for e in entries if e["name"] in seen]


def record_schema(qmp: RawQMP, roots: list[str]) -> dict[str, object]:
    """The reachable schema entries and the query-commands order of ``roots``."""
    version = json.loads(qmp.command(b'{"execute": "query-version"}'))["return"]
    schema = json.loads(qmp.command(b'{"execute": "query-qmp-schema"}'))["return"]
    commands = json.loads(qmp.command(b'{"execute": "query-commands"}'))["return"]
    release = "{major}.{minor}.{micro}".format(**version["qemu"])
    return {
        "source": f"query-qmp-schema and query-commands of QEMU {release} ({version['package']})",
        "entries": reachable(schema, roots),
        "query-commands": [c["name"] for c in commands if c["name"] in roots],
    }


def served_roots(version: str = "7.2") -> list[str]:
    """Names of the commands and events qmpdl serves as QEMU ``version``."""
    schema = QapiSchema.load(get_profile(version)).schema
    return [*schema.commands, *schema.events]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.qapi.record_goldens")
    parser.add_argument("--version", action="append", choices=list(ORACLES))
    opts = parser.parse_args(argv)
    GOLDEN_DIR.mkdir(exist_ok=True)
    for version in opts.version or ORACLES:
        with QemuProcess(version=version) as qemu, connect(qemu) as qmp:
            schema = record_schema(qmp, served_roots(version))
            rows = record_cases(qmp, all_cases())
        validation_path(version).write_text(json.dumps(rows, indent=1) + "\n", encoding="ascii")
        schema_path(version).write_text(json.dumps(schema, indent=1) + "\n", encoding="ascii")
        print(f"QEMU {version}: wrote {len(rows)} cases and the schema to {GOLDEN_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
