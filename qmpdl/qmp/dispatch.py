"""Turning one request into one response, as QEMU's qmp_dispatch does (no I/O).

The checks and their texts follow QEMU exactly, including the order in which the keys
of the request object are examined (QDict iteration order, not input order).  The
command itself runs through the runner the caller supplies (:data:`CommandRunner` for
:func:`dispatch`, awaited - the server runs in-band commands in a worker thread;
:data:`SyncCommandRunner` for :func:`dispatch_now`, out-of-band ones in the caller): it
does the schema-driven argument parsing and calls the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qjson import JsonNull, ParseFailure, qdict_order

NEGOTIATION_DESC = "Expecting capabilities negotiation with 'qmp_capabilities'"

#: Called with (command name, arguments); returns the ``return`` value or raises QMPError.
CommandRunner = Callable[[str, JsonObject], Awaitable[JsonValue]]
#: The same, for commands that run to completion in the caller (out-of-band ones).
SyncCommandRunner = Callable[[str, JsonObject], JsonValue]


class CheckedRequest(NamedTuple):
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


class CommandSet(NamedTuple):
    """The commands a monitor answers to, with their OOB permission."""

    #: command name -> allow-oob
    commands: dict[str, bool]

    def find(self, name: str) -> bool | None:
        return self.commands.get(name)


def _checked(request: JsonObject, commands: CommandSet, oob_enabled: bool) -> CheckedRequest:
    """The request's structure, its command and its OOB permission (raises QMPError)."""
    checked = check_request(request, oob_enabled)
    allow_oob = commands.find(checked.command)
    if allow_oob is None:
        raise QMPError(f"The command {checked.command} has not been found", "CommandNotFound")
    if checked.oob and not allow_oob:
        raise QMPError(f"The command {checked.command} does not support OOB")
    return checked


def _failed(error: QMPError, negotiating: bool) -> JsonObject:
    if negotiating and error.error_class == "CommandNotFound":
        error = QMPError(NEGOTIATION_DESC, "CommandNotFound")
    return error_response(error)


def _not_a_request(request: JsonValue | JsonNull | ParseFailure) -> JsonObject | None:
    """The response to input that is not a request object at all (never has an id)."""
    if isinstance(request, ParseFailure):
        return error_response(QMPError(request.desc))
    if not isinstance(request, dict):
        return error_response(QMPError("QMP input must be a JSON object"))
    return None


def _with_id(request: JsonObject, response: JsonObject) -> JsonObject:
    if "id" in request:
        response["id"] = request["id"]
    return response


async def dispatch(
    request: JsonValue | JsonNull | ParseFailure,
    *,
    commands: CommandSet,
    negotiating: bool,
    oob_enabled: bool,
    run: CommandRunner,
) -> JsonObject:
    """The complete response to one request (never raises QMPError)."""
    early = _not_a_request(request)
    if early is not None:
        return early
    assert isinstance(request, dict)
    try:
        checked = _checked(request, commands, oob_enabled)
        response: JsonObject = {"return": await run(checked.command, checked.arguments)}
    except QMPError as error:
        response = _failed(error, negotiating)
    return _with_id(request, response)


def dispatch_now(
    request: JsonValue | JsonNull | ParseFailure,
    *,
    commands: CommandSet,
    negotiating: bool,
    oob_enabled: bool,
    run: SyncCommandRunner,
) -> JsonObject:
    """:func:`dispatch` for out-of-band requests: QEMU answers those in its I/O thread
    the moment they are parsed, so the command runs here and now (``dispatch`` driven
    to its end at once: nothing in it waits)."""

    async def now(command: str, arguments: JsonObject) -> JsonValue:
        return run(command, arguments)

    steps = dispatch(
        request, commands=commands, negotiating=negotiating, oob_enabled=oob_enabled, run=now
    )
    try:
        steps.send(None)
    except StopIteration as done:
        response: JsonObject = done.value
        return response
    steps.close()
    raise AssertionError("dispatch waited for something")  # pragma: no cover
