"""Every harness command answers in every profile, with the members that version's
schema has (a profile without recorded data of its own uses the nearest earlier
recording, and what differs is filled in), on the pc machine and on none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qmpdl.commands.executor import CommandExecutor
from qmpdl.config import MachineConfig
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject
from qmpdl.profile import profile_names
from qmpdl.qapi import QapiSchema
from qmpdl.system import build_machine

_VCPU = "/machine/unattached/device[0]"
CALLS: list[tuple[str, JsonObject]] = [
    ("query-target", {}),
    ("query-machines", {}),
    ("query-cpu-definitions", {}),
    ("query-cpu-model-expansion", {"type": "full", "model": {"name": "qemu64"}}),
    ("query-cpu-model-expansion", {"type": "static", "model": {"name": "host"}}),
    ("qom-list-types", {"abstract": True}),
    ("qom-list-properties", {"typename": "virtio-net-pci"}),
    ("device-list-properties", {"typename": "virtio-blk-pci"}),
    ("qom-list", {"path": _VCPU}),
    ("qom-get", {"path": _VCPU, "property": "feature-words"}),
    ("query-tpm-models", {}),
    ("query-tpm-types", {}),
    ("query-command-line-options", {}),
    ("query-sev-capabilities", {}),
    ("query-sgx-capabilities", {}),
    ("query-hotpluggable-cpus", {}),
    ("query-iothreads", {}),
    ("query-named-block-nodes", {}),
    ("query-block", {}),
    ("query-blockstats", {"query-nodes": True}),
    ("set-action", {"reboot": "reset"}),
    ("query-name", {}),
    ("query-uuid", {}),
    ("query-stats", {"target": "vcpu"}),
    ("query-stats", {"target": "vm"}),
    ("query-stats-schemas", {}),
]


@pytest.fixture(params=["pc", "none"])
def machine_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def executors(machine_type: str) -> Iterator[tuple[str, CommandExecutor]]:
    for name in profile_names():
        config = MachineConfig(qemu_version=name, machine_type=machine_type, start_paused=True)
        machine = build_machine(config)
        try:
            yield name, CommandExecutor(machine, QapiSchema.load(machine.profile))
        finally:
            machine.teardown()


def test_every_profile_answers(machine_type: str) -> None:
    for profile, executor in executors(machine_type):
        for command, arguments in CALLS:
            try:
                executor.call_sync(command, arguments)
            except QMPError as error:
                # the answers QEMU gives as errors: no SEV/SGX here, no vCPU slots or
                # vCPUs on the none machine
                expected = command in ("query-sev-capabilities", "query-sgx-capabilities") or (
                    machine_type == "none"
                    and command in ("query-hotpluggable-cpus", "qom-list", "qom-get")
                )
                assert expected, f"{profile} {command}: {error.desc}"
