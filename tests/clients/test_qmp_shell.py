"""qemu.qmp's ``qmp-shell`` (plain, ``-p``, ``-H``) and ``qmp-shell-wrap`` with piped
input, against qmpdl and against real QEMU 7.2 with the same vCPUs: the printed output
must be the same (event timestamps aside).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.qemu import QemuProcess
from tests.clients.conftest import CLIENT_QEMU_ARGS, CLIENT_QMPDL_ARGS
from tests.protocol.harness import has_traceback, need_tool, qemu_argv

_TIMESTAMP = re.compile(r"'seconds': \d+, 'microseconds': \d+")

QMP_LINES = [
    "query-status",
    "query-kvm",
    "query-version",
    "query-yank",
    "no-such-command",
    "set-vcpu-dirty-limit dirty-rate=100 cpu-index=1",
    "query-vcpu-dirty-limit",
    "set-vcpu-dirty-limit dirty-rate=100 cpu-index=2",
    "cancel-vcpu-dirty-limit",
    "query-vcpu-dirty-limit",
    "query-dirty-rate",
    "calc-dirty-rate calc-time=0",
    "human-monitor-command command-line='info status'",
    "stop",
    "",
    "cont",
    "",
]

HMP_LINES = [
    "info vcpu_dirty_limit",
    "set_vcpu_dirty_limit 50 0",
    "info vcpu_dirty_limit",
    "set_vcpu_dirty_limit 60",
    "info vcpu_dirty_limit",
    "cancel_vcpu_dirty_limit 1",
    "cancel_vcpu_dirty_limit",
    "info vcpu_dirty_limit",
    "set_vcpu_dirty_limit",
    "set_vcpu_dirty_limit 10 7",
    "set_vcpu_dirty_limit x",
    "info dirty_rate",
    "calc_dirty_rate",
    "calc_dirty_rate 0",
    "info status",
    "info version",
    "info kvm",
    "no_such_command",
    "help set_vcpu_dirty_limit",
    "cpu 5",
]


def shell(
    args: list[str],
    lines: list[str],
    home: Path,
    cwd: Path | None = None,
    *,
    hangup_ok: bool = False,
) -> str:
    """Run a qemu.qmp console script with ``lines`` on stdin; its stdout.

    ``hangup_ok``: after ``quit`` the server may close the connection before the shell
    does, and then qemu.qmp's close() raises EOFError (it does so with QEMU every time).
    """
    tool = need_tool(args[0])
    env = {**os.environ, "HOME": str(home), "TERM": "dumb"}
    done = subprocess.run(
        [tool, *args[1:]],
        input="".join(line + "\n" for line in lines).encode(),
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode()
    if hangup_ok and done.returncode == 1 and stderr.endswith("\nEOFError\n"):
        assert "in close\n" in stderr, stderr
    else:
        assert done.returncode == 0, stderr
        assert not has_traceback(stderr), stderr
    return _TIMESTAMP.sub("'seconds': 0, 'microseconds': 0", done.stdout.decode())


PRETTY_LINES = ["query-kvm", "no-such", "query-vcpu-dirty-limit", "stop", "", "cont"]
MODES = {"plain": ([], QMP_LINES), "pretty": (["-p"], PRETTY_LINES), "hmp": (["-H"], HMP_LINES)}

Outputs = Callable[[str, str], str]


@pytest.fixture(scope="module")
def outputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """``outputs(server, mode)``: the shell's output for ``MODES[mode]`` against
    ``server`` ("qmpdl" or "qemu"), run once per module."""
    memo: dict[tuple[str, str], str] = {}
    home = tmp_path_factory.mktemp("home")

    def get(server: str, mode: str) -> str:
        if (server, mode) not in memo:
            proc: QmpdlProcess | QemuProcess = request.getfixturevalue(f"{server}_proc")
            options, lines = MODES[mode]
            memo[server, mode] = shell(["qmp-shell", *options, proc.socket_path], lines, home)
        return memo[server, mode]

    return get


def test_qmp_shell(outputs: Outputs) -> None:
    out = outputs("qmpdl", "plain")
    assert out.startswith("Welcome to the QMP low-level shell!\nConnected to QEMU 7.2.22\n\n")
    assert '(QEMU) {"return": {"status": "running", "singlestep": false, "running": true}}\n' in out
    assert (
        '{"error": {"class": "CommandNotFound", '
        '"desc": "The command no-such-command has not been found"}}' in out
    )
    assert '{"return": [{"limit-rate": 100, "current-rate": 0, "cpu-index": 1}]}' in out
    assert '{"error": {"class": "GenericError", "desc": "incorrect cpu index specified"}}' in out
    # an empty line prints the events that came in
    assert "{'timestamp': {'seconds': 0, 'microseconds': 0}, 'event': 'STOP'}" in out
    assert "{'timestamp': {'seconds': 0, 'microseconds': 0}, 'event': 'RESUME'}" in out


def test_qmp_shell_pretty(outputs: Outputs) -> None:
    out = outputs("qmpdl", "pretty")
    assert (
        "(QEMU) {\n"
        '    "return": {\n'
        '        "enabled": true,\n'
        '        "present": true\n'
        "    }\n"
        "}\n"
        "(QEMU) {\n"
        '    "error": {\n'
        '        "class": "CommandNotFound",\n'
        '        "desc": "The command no-such has not been found"\n'
        "    }\n"
        "}\n"
        "(QEMU) {\n"
        '    "return": []\n'
        "}\n"
    ) in out


def test_hmp_shell(outputs: Outputs) -> None:
    """``-H`` runs ``help`` and ``info`` through human-monitor-command at start-up to
    build its completion table (a malformed listing would crash it)."""
    out = outputs("qmpdl", "hmp")
    assert out.startswith("Welcome to the HMP shell!\nConnected to QEMU 7.2.22\n\n")
    assert "vcpu[0], limit rate 50 (MB/s), current rate 0 (MB/s)" in out
    assert "VM status: running" in out
    assert "bad CPU index" in out


@pytest.mark.qemu
@pytest.mark.parametrize("mode", list(MODES))
def test_shell_output_as_with_qemu(outputs: Outputs, mode: str) -> None:
    assert outputs("qmpdl", mode) == outputs("qemu", mode)


@pytest.mark.qemu
def test_hmp_shell_cpu_command(
    qmpdl_proc: QmpdlProcess, qemu_proc: QemuProcess, tmp_path: Path
) -> None:
    lines = ["cpu 1", "info version", "cpu 0"]
    ours = shell(["qmp-shell", "-H", qmpdl_proc.socket_path], lines, tmp_path)
    theirs = shell(["qmp-shell", "-H", qemu_proc.socket_path], lines, tmp_path)
    assert ours == theirs


@pytest.mark.parametrize("kind", ["qmpdl", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_qmp_shell_wrap(kind: str, tmp_path: Path) -> None:
    """qmp-shell-wrap starts the server with ``-qmp unix:qmp-shell-wrap-PID`` appended,
    listens there and takes the connection qmpdl makes out to it."""
    server = (
        [sys.executable, "-m", "qmpdl", *CLIENT_QMPDL_ARGS]
        if kind == "qmpdl"
        else qemu_argv(machine=CLIENT_QEMU_ARGS)
    )
    out = shell(
        ["qmp-shell-wrap", "--", *server],
        ["query-status", "query-yank", "quit"],
        tmp_path,
        cwd=tmp_path,
        hangup_ok=True,
    )
    # (in accept mode qmp-shell keeps no greeting, so it prints a bare "Connected")
    assert out == (
        "Welcome to the QMP low-level shell!\n"
        "Connected\n"
        '(QEMU) {"return": {"status": "running", "singlestep": false, "running": true}}\n'
        '(QEMU) {"return": [{"type": "chardev", "id": "compat_monitor0"}]}\n'
        '(QEMU) {"return": {}}\n'
        "(QEMU) \n"
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("qmp-shell-wrap-")]
