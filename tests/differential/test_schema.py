"""query-qmp-schema and query-commands, which the corpus cannot compare byte for byte.

QEMU's schema has ~1051 entities and ~200 commands; qmpdl describes only what it serves,
and the masked type names ("0", "1", ...) are numbered over the whole schema.  So both
replies are read off the wire, and the entries reachable from qmpdl's commands and events
must be identical once each masked name of qmpdl's is mapped to QEMU's by structure
(:mod:`tests.qapi.schema_compare`), keys in the same wire order; and qmpdl's
``query-commands`` must be QEMU's restricted to qmpdl's commands, in the same order.

Both QEMU versions (7.2 and 10.0) are compared, each with qmpdl answering as it.
Offline the reference is QEMU's reply recorded in ``tests/qapi/golden``
(``python -m tests.qapi.record_goldens``); with that QEMU available it is QEMU itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.tools.rawqmp import RawQMP
from qmpdl.tools.targets import TARGETS, VERSIONS, start
from tests.conftest import need_qemu
from tests.qapi.record_goldens import load_schema_golden, reachable
from tests.qapi.schema_compare import SchemaComparison


class Reply:
    """The two introspection replies of one server."""

    def __init__(self, schema: list[JsonObject], commands: list[str]) -> None:
        self.schema = schema
        self.commands = commands

    @classmethod
    def fetch(cls, sock: str) -> Reply:
        with RawQMP(sock, timeout=30) as conn:
            conn.negotiate()
            schema = json.loads(conn.command(b'{"execute": "query-qmp-schema"}'))["return"]
            commands = json.loads(conn.command(b'{"execute": "query-commands"}'))["return"]
        return cls(schema, [str(c["name"]) for c in commands])

    def roots(self) -> list[str]:
        """Names of the commands and events, in schema order."""
        return [str(e["name"]) for e in self.schema if e["meta-type"] in ("command", "event")]


class WireComparison(SchemaComparison):
    """Both sides are replies read off the wire: keys compare in the order received."""

    def wire_keys(self, ours: JsonObject) -> list[str]:
        return list(ours)


def compare(ours: Reply, theirs: list[JsonObject]) -> list[str]:
    """Problems between qmpdl's schema and QEMU's entries (empty: identical)."""
    mine: list[JsonValue] = list(ours.schema)
    other: list[JsonValue] = list(theirs)
    problems = WireComparison(mine, other).run(ours.roots())
    expected = len(reachable(theirs, ours.roots()))
    if len(ours.schema) != expected:
        problems.append(f"{len(ours.schema)} entries, QEMU reaches {expected} from the same roots")
    return problems


def restricted(commands: list[str], to: list[str]) -> list[str]:
    """``commands`` (QEMU's query-commands) restricted to the names in ``to``."""
    wanted = set(to)
    return [name for name in commands if name in wanted]


@pytest.fixture(scope="module", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def qmpdl_reply(version: str) -> Iterator[Reply]:
    with start("qmpdl", TARGETS["ring"], version=version) as sock:
        yield Reply.fetch(sock)


def test_schema_matches_recorded_qemu(version: str, qmpdl_reply: Reply) -> None:
    golden = load_schema_golden(version)
    entries = [e for e in golden["entries"] if isinstance(e, dict)]
    assert compare(qmpdl_reply, entries) == []


def test_query_commands_matches_recorded_qemu(version: str, qmpdl_reply: Reply) -> None:
    assert qmpdl_reply.commands == load_schema_golden(version)["query-commands"]


def test_query_commands_lists_the_schema_commands(qmpdl_reply: Reply) -> None:
    schema_commands = [str(e["name"]) for e in qmpdl_reply.schema if e["meta-type"] == "command"]
    assert sorted(qmpdl_reply.commands) == sorted(schema_commands)


def test_comparison_sees_a_renamed_member(version: str, qmpdl_reply: Reply) -> None:
    golden = load_schema_golden(version)
    text = json.dumps(golden["entries"]).replace('"cpu-index"', '"cpu-idx"')
    assert compare(qmpdl_reply, json.loads(text)) != []


@pytest.mark.qemu
def test_schema_and_commands_match_live_qemu(version: str, qmpdl_reply: Reply) -> None:
    need_qemu(version)
    with start("qemu", TARGETS["ring"], version=version) as sock:
        qemu = Reply.fetch(sock)
    assert compare(qmpdl_reply, qemu.schema) == []
    assert set(qmpdl_reply.commands) <= set(qemu.commands)
    assert qmpdl_reply.commands == restricted(qemu.commands, qmpdl_reply.commands)
