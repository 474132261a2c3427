"""What qmpdl's guests do with the ACPI power button (``system_powerdown``, ``virsh
shutdown``): they shut down, as a guest operating system with ACPI support does.

``system_powerdown`` emits POWERDOWN; a running guest then powers itself off (SHUTDOWN,
``guest`` true, reason ``guest-shutdown``), a paused one when it runs again.  What follows
is the shutdown action: with ``-no-shutdown`` (or ``set-action shutdown=pause``) the VM
stops in run state ``shutdown``, otherwise the process exits, as QEMU's does.
"""

from __future__ import annotations

from collections.abc import Callable

from qmpdl.jsontypes import JsonObject
from qmpdl.qapi.types import RunState
from qmpdl.system.machine import Machine


def shutdown_pauses(machine: Machine) -> bool:
    """True when a guest shutdown stops the VM instead of ending the process."""
    return machine.config.no_shutdown or machine.vmstate.actions.shutdown == "pause"


class PowerButton:
    """Watches the machine's events; ``schedule`` runs the guest's shutdown later, off
    the thread that emitted the event (the guest reacts after the command returned)."""

    def __init__(
        self,
        machine: Machine,
        schedule: Callable[[Callable[[], None]], None],
        on_exit: Callable[[], None],
    ) -> None:
        self.machine = machine
        self._schedule = schedule
        self._on_exit = on_exit
        #: pressed while the guest was not running: it acts when it runs again
        self.pending = False
        self._unsubscribe = machine.events.subscribe(self._event)

    def _event(self, event: JsonObject) -> None:
        name = event.get("event")
        if name == "POWERDOWN" or (name == "RESUME" and self.pending):
            self.pending = True
            self._schedule(self._act)

    def _act(self) -> None:
        machine = self.machine
        with machine.bql:
            if not self.pending or machine.runstate != RunState.RUNNING:
                return
            self.pending = False
            exits = machine.guest_shutdown(pause=shutdown_pauses(machine))
        if exits:
            self._on_exit()

    def close(self) -> None:
        self._unsubscribe()
