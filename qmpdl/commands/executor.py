"""Running a command: schema-driven arguments in, handler, schema-shaped return out."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from qmpdl.commands.registry import CommandContext, CommandSpec, load_all
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi import QapiSchema
from qmpdl.qmp.dispatch import CommandSet
from qmpdl.qmp.session import MonitorSession
from qmpdl.system.machine import Machine


class CommandExecutor:
    """Executes QMP commands against one machine."""

    def __init__(self, machine: Machine, schema: QapiSchema) -> None:
        self.machine = machine
        self.schema = schema
        registry = load_all()
        self._commands: dict[str, CommandSpec] = {}
        missing = []
        for name in schema.command_names():
            spec = registry.get(name)
            if spec is None:
                missing.append(name)
            else:
                self._commands[name] = spec
        if missing:
            raise RuntimeError(f"schema commands without a handler: {', '.join(missing)}")
        allow_oob = {name: self._allow_oob(name) for name in self._commands}
        # Out-of-band commands run on the event loop as soon as they are parsed.
        blocking_oob = [n for n, spec in self._commands.items() if spec.blocking and allow_oob[n]]
        if blocking_oob:
            raise RuntimeError(f"allow-oob commands must not block: {', '.join(blocking_oob)}")
        self._command_mode = CommandSet(allow_oob)
        #: where blocking handlers run: one thread, made when first needed (the
        #: dispatcher runs one in-band command at a time, as QEMU's main loop does)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmp-blocking")
        self._negotiation_mode = CommandSet({"qmp_capabilities": allow_oob["qmp_capabilities"]})
        #: a virtual clock's: a reply waits until the machine's threads are still
        self._settle = getattr(machine.clock, "settle", None)

    def _allow_oob(self, name: str) -> bool:
        command = self.schema.command(name)
        assert command is not None
        return bool(command.allow_oob)

    def blocks(self, name: str) -> bool:
        """True when command ``name`` runs in a worker thread (it may take long)."""
        spec = self._commands.get(name)
        return spec is not None and spec.blocking

    def command_set(self, *, negotiating: bool) -> CommandSet:
        return self._negotiation_mode if negotiating else self._command_mode

    def call_sync(
        self,
        name: str,
        arguments: JsonObject,
        session: MonitorSession | None = None,
        *,
        out_of_band: bool = False,
    ) -> JsonValue:
        """Validate ``arguments``, run the handler here, shape its return value.

        In-band handlers run with the BQL held, as in QEMU's main loop; out-of-band
        ones (QEMU's I/O thread) without it."""
        spec = self._commands.get(name)
        if spec is None:
            raise QMPError(f"The command {name} has not been found", "CommandNotFound")
        args = self.schema.parse_arguments(name, arguments)
        ctx = CommandContext(self.machine, self.schema, session, self)
        if out_of_band:
            return self.schema.return_value(name, spec.handler(ctx, args))
        with self.machine.bql:
            value = self.schema.return_value(name, spec.handler(ctx, args))
        if self._settle is not None and not self.machine.bql.held():  # not nested (HMP)
            self._settle()
        return value

    async def call(self, name: str, arguments: JsonObject, session: MonitorSession) -> JsonValue:
        """Run a command for a monitor; blocking handlers run in a worker thread."""
        spec = self._commands.get(name)
        if spec is not None and spec.blocking:
            call = functools.partial(self.call_sync, name, arguments, session)
            return await asyncio.get_running_loop().run_in_executor(self._worker, call)
        return self.call_sync(name, arguments, session)

    def close(self) -> None:
        """Join the thread blocking handlers ran in (the process is exiting)."""
        self._worker.shutdown(wait=True)
