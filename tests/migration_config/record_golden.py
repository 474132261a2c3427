"""Record real QEMU's answers for the migration configuration tests.

    python -m tests.migration_config.record_golden [--version V]

Writes ``golden/qemu-VERSION.json`` for each oracle (7.2 and 10.0; about 15 s each,
several short-lived QEMUs):

* ``sessions``: each request of :data:`~tests.migration_config.scenarios.SESSIONS` and
  QEMU's raw reply line (without the line end);
* ``globals``: for each ``-global`` list its exit status and stderr, or on success the
  ``query-migrate-parameters`` / ``query-migrate-capabilities`` replies and the
  ``info migrate`` text;
* ``info_migrate``: ``query-migrate`` replies and the ``info migrate`` text QEMU printed
  right after, taken from a real migration between two QEMUs (listening, setup, active
  with XBZRLE, completed on both sides, failed).

The offline tests compare qmpdl with this file; the ``qemu``-marked test records again
and compares, so a stale file fails there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.tools.qemu import ORACLES, QemuProcess, qemu_command
from qmpdl.tools.rawqmp import RawQMP
from tests.migration_config.scenarios import GLOBALS, QEMU_ARGS, SESSIONS
from tests.qapi.live import connect

VERSIONS = list(ORACLES)


def golden_path(version: str) -> Path:
    return Path(__file__).with_name("golden") / f"qemu-{version}.json"


#: How QEMU names itself on stderr; recorded as this placeholder.
PROG = "PROG"
#: A small guest for the real migration (no dirty ring: KVM's ring and SeaBIOS's early
#: dirty logging do not mix well on every host).
_PC = ["-accel", "kvm", "-machine", "pc", "-m", "64"]


def as_request(step: str) -> bytes:
    """A step as the bytes sent: JSON as is, anything else an HMP line."""
    if step.startswith("{"):
        return step.encode()
    return json.dumps(
        {"execute": "human-monitor-command", "arguments": {"command-line": step}}
    ).encode()


def record_sessions(version: str = "7.2") -> dict[str, list[list[str]]]:
    sessions: dict[str, list[list[str]]] = {}
    for name, steps in SESSIONS.items():
        with QemuProcess(QEMU_ARGS, version=version) as qemu, connect(qemu) as qmp:
            sessions[name] = [
                [step, qmp.command(as_request(step)).decode().rstrip("\r\n")] for step in steps
            ]
    return sessions


def _stdio_qemu(
    globals_: list[str], requests: list[str], version: str
) -> subprocess.CompletedProcess[str]:
    command = qemu_command(version)
    assert command is not None
    argv = [*command, *QEMU_ARGS, "-nographic", "-nodefaults", "-S", "-qmp", "stdio"]
    for item in globals_:
        argv += ["-global", item]
    script = '{"execute": "qmp_capabilities"}\n' + "".join(r + "\n" for r in requests)
    script += '{"execute": "quit"}\n'
    return subprocess.run(
        argv, input=script, capture_output=True, text=True, timeout=30, check=False
    )


def record_globals(version: str = "7.2") -> list[dict[str, Any]]:
    requests = [
        '{"execute": "query-migrate-parameters"}',
        '{"execute": "query-migrate-capabilities"}',
        as_request("info migrate").decode(),
    ]
    rows: list[dict[str, Any]] = []
    for globals_ in GLOBALS:
        done = _stdio_qemu(globals_, requests, version)
        row: dict[str, Any] = {
            "globals": globals_,
            "status": done.returncode,
            "stderr": done.stderr.replace("qemu-system-x86_64:", PROG + ":"),
        }
        if not done.returncode:
            replies = [json.loads(line) for line in done.stdout.splitlines()[2:5]]
            row["parameters"] = replies[0]["return"]
            row["capabilities"] = replies[1]["return"]
            row["info_migrate"] = replies[2]["return"]
        rows.append(row)
    return rows


def _json(qmp: RawQMP, request: JsonObject) -> Any:
    while True:
        reply = json.loads(qmp.command(json.dumps(request).encode()))
        if "event" not in reply:
            return reply


def _snapshot(qmp: RawQMP, what: str, rows: list[dict[str, Any]]) -> JsonObject:
    """``query-migrate`` and ``info migrate`` of the same moment: tried until a second
    query-migrate after the HMP command gives the same reply as the one before."""
    hmp: JsonObject = {
        "execute": "human-monitor-command",
        "arguments": {"command-line": "info migrate"},
    }
    for _ in range(200):
        info = _json(qmp, {"execute": "query-migrate"})["return"]
        text = _json(qmp, hmp)["return"]
        if _json(qmp, {"execute": "query-migrate"})["return"] == info:
            break
    rows.append({"what": what, "query_migrate": info, "info_migrate": text})
    assert isinstance(info, dict)
    return info


def record_migration(workdir: Path, version: str = "7.2") -> list[dict[str, Any]]:
    """Two QEMUs: query-migrate and ``info migrate`` at the interesting moments."""
    rows: list[dict[str, Any]] = []
    sock = workdir / "migration.sock"
    with (
        QemuProcess(_PC, version=version) as src,
        QemuProcess([*_PC, "-incoming", "defer"], version=version) as dst,
        connect(src) as s,
        connect(dst) as d,
    ):
        _snapshot(d, "destination before migrate-incoming", rows)
        _json(d, {"execute": "migrate-incoming", "arguments": {"uri": f"unix:{sock}"}})
        _snapshot(d, "destination listening", rows)
        _json(s, {"execute": "migrate", "arguments": {"uri": f"unix:{workdir}/nowhere.sock"}})
        for _ in range(100):
            if _snapshot(s, "source failed", rows).get("status") == "failed":
                break
            rows.pop()
            time.sleep(0.05)
        caps: list[JsonValue] = [
            {"capability": "xbzrle", "state": True},
            {"capability": "events", "state": True},
        ]
        _json(s, {"execute": "migrate-set-capabilities", "arguments": {"capabilities": caps}})
        _json(s, {"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 100000}})
        _json(s, {"execute": "migrate", "arguments": {"uri": f"unix:{sock}"}})
        seen: set[str] = set()
        for _ in range(400):
            status = str(_snapshot(s, "source", rows).get("status"))
            if status in seen and status != "completed":
                rows.pop()
            else:
                rows[-1]["what"] = f"source {status}"
                seen.add(status)
            if status == "active" and len([r for r in rows if "active" in r["what"]]) == 1:
                _json(s, {"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 0}})
            if status in ("completed", "failed"):
                break
            time.sleep(0.02)
        _snapshot(d, "destination completed", rows)
    return rows


def record(workdir: Path, version: str) -> dict[str, Any]:
    command = qemu_command(version)
    assert command is not None
    banner = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    return {
        "source": f"{banner.stdout.splitlines()[0]}, -accel kvm,dirty-ring-size=4096 -machine none",
        "sessions": record_sessions(version),
        "globals": record_globals(version),
        "info_migrate": record_migration(workdir, version),
    }


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tests.migration_config.record_golden")
    parser.add_argument("--version", action="append", choices=VERSIONS)
    opts = parser.parse_args(argv)
    for version in opts.version or VERSIONS:
        with tempfile.TemporaryDirectory() as tmp:
            data = record(Path(tmp), version)
        path = golden_path(version)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
