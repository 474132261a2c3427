"""An in-process qmpdl machine that answers requests as raw reply lines."""

from __future__ import annotations

import json

from qmpdl.cli import parse_args
from qmpdl.commands.executor import CommandExecutor
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonValue
from qmpdl.qapi import QapiSchema
from qmpdl.qjson.encoder import encode_message
from qmpdl.system import build_machine
from qmpdl.system.machine import Machine


class Qmpdl:
    """A machine built from qmpdl command-line arguments, without sockets."""

    def __init__(self, argv: list[str]) -> None:
        self.machine: Machine = build_machine(parse_args(argv))
        self.machine.start()
        self.executor = CommandExecutor(self.machine, QapiSchema.load(self.machine.profile))

    def __enter__(self) -> Qmpdl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.machine.teardown()

    def reply(self, request: str) -> str:
        """The reply line (no line end) to a JSON request, as the monitor would send it."""
        message = json.loads(request)
        value: JsonValue
        try:
            result = self.executor.call_sync(message["execute"], message.get("arguments", {}))
            value = {"return": result}
        except QMPError as err:
            value = {"error": {"class": err.error_class, "desc": err.desc}}
        return encode_message(value).decode("ascii").rstrip("\r\n")
