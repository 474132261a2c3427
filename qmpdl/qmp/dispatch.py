"""Turning one request into one response, as QEMU's qmp_dispatch does (no I/O).

The checks and their texts follow QEMU exactly, including the order in which the keys
of the request object are examined (QDict iteration order, not input order).  The
command itself runs through :class:`CommandRunner`, which the caller supplies: it does
the schema-driven argument parsing and calls the handler, possibly in another thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qjson import ParseError, qdict_order

NEGOTIATION_DESC = "Expecting capabilities negotiation with 'qmp_capabilities'"

#: Called with (command name, arguments); returns the ``return`` value or raises QMPError.
CommandRunner = Callable[[str, JsonObject], Awaitable[JsonValue]]


@dataclass(frozen=True)
class CheckedRequest:
    """A request object that passed QEMU's structural checks."""

    command: str
    arguments: JsonObject
    oob: bool


def error_response(error: QMPError) -> JsonObject:
    return {"error": {"class": error.error_class, "desc": error.desc}}


def check_request(request: JsonObject, allow_oob: bool) -> CheckedRequest:
    """QEMU's ``qmp_dispatch_check_obj``: the members a request may have, and their types."""
    exec_key: str | None = None
    for key in qdict_order(list(request)):
        value = request[key]
        if key == "execute" or (key == "exec-oob" and allow_oob):
            if not isinstance(value, str):
                raise QMPError(f"QMP input member '{key}' must be a string")
            if exec_key is not None:
                raise QMPError(f"QMP input member '{key}' clashes with '{exec_key}'")
            exec_key = key
        elif key == "arguments":
            if not isinstance(value, dict):
                raise QMPError("QMP input member 'arguments' must be an object")
        elif key == "id":
            continue
        else:
            raise QMPError(f"QMP input member '{key}' is unexpected")
    if exec_key is None:
        raise QMPError("QMP input lacks member 'execute'")
    command = request[exec_key]
    arguments = request.get("arguments", {})
    assert isinstance(command, str) and isinstance(arguments, dict)
    return CheckedRequest(command, arguments, exec_key == "exec-oob")


@dataclass(frozen=True)
class CommandSet:
    """The commands a monitor answers to, with their OOB permission."""

    #: command name -> allow-oob
    commands: dict[str, bool]

    def find(self, name: str) -> bool | None:
        return self.commands.get(name)


async def dispatch(
    request: JsonValue | ParseError,
    *,
    commands: CommandSet,
    negotiating: bool,
    oob_enabled: bool,
    run: CommandRunner,
) -> JsonObject:
    """The complete response to one request (never raises QMPError)."""
    if isinstance(request, ParseError):
        return error_response(QMPError(request.desc))
    if not isinstance(request, dict):
        return error_response(QMPError("QMP input must be a JSON object"))
    has_id = "id" in request
    try:
        checked = check_request(request, oob_enabled)
        allow_oob = commands.find(checked.command)
        if allow_oob is None:
            raise QMPError(f"The command {checked.command} has not been found", "CommandNotFound")
        if checked.oob and not allow_oob:
            raise QMPError(f"The command {checked.command} does not support OOB")
        response: JsonObject = {"return": await run(checked.command, checked.arguments)}
    except QMPError as error:
        if negotiating and error.error_class == "CommandNotFound":
            error = QMPError(NEGOTIATION_DESC, "CommandNotFound")
        response = error_response(error)
    if has_id:
        response["id"] = request["id"]
    return response
