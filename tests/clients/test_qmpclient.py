"""qemu.qmp's asyncio ``QMPClient`` against qmpdl.

With the default negotiation the client sees ``oob`` in the greeting and enables it
(so ``exec-oob`` works); with ``negotiate = False`` the test negotiates by hand without
``enable``.  Commands, ``ExecuteError`` with class and text, event listeners, and an OOB
command that completes while an in-band one is blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from qemu.qmp import EventListener, ExecuteError, Message, QMPClient

VERSION = {
    "qemu": {"micro": 22, "minor": 2, "major": 7},
    "package": "Debian 1:7.2+dfsg-7+deb12u18+b3",
}
TIMEOUT = 60.0  # a bound only


@pytest.fixture
async def client(qmpdl_sock: str) -> AsyncIterator[QMPClient]:
    qmp = QMPClient("qmpdl-test")
    await asyncio.wait_for(qmp.connect(qmpdl_sock), TIMEOUT)
    try:
        yield qmp
    finally:
        await qmp.disconnect()


@pytest.fixture
async def plain_client(qmpdl_sock: str) -> AsyncIterator[QMPClient]:
    """Connected and greeted, negotiated by the test itself."""
    qmp = QMPClient("qmpdl-test-plain")
    qmp.negotiate = False
    await asyncio.wait_for(qmp.connect(qmpdl_sock), TIMEOUT)
    try:
        yield qmp
    finally:
        await qmp.disconnect()


async def run(
    qmp: QMPClient, cmd: str, args: dict[str, object] | None = None, *, oob: bool = False
) -> object:
    return await asyncio.wait_for(qmp.execute(cmd, args, oob=oob), TIMEOUT)


def stamp(event: Message) -> tuple[int, int]:
    timestamp = event["timestamp"]
    assert isinstance(timestamp, dict) and set(timestamp) == {"seconds", "microseconds"}
    seconds, microseconds = timestamp["seconds"], timestamp["microseconds"]
    assert isinstance(seconds, int) and isinstance(microseconds, int)
    return seconds, microseconds


async def test_greeting_and_commands(client: QMPClient) -> None:
    assert client.greeting is not None
    assert client.greeting.QMP.capabilities == ["oob"]
    assert client.greeting.QMP.version == VERSION
    assert await run(client, "query-version") == VERSION
    assert await run(client, "query-status") == {
        "status": "running",
        "singlestep": False,
        "running": True,
    }
    assert await run(client, "query-kvm") == {"enabled": True, "present": True}
    # several commands in flight at once, matched by their ids
    results = await asyncio.gather(*(run(client, "query-kvm") for _ in range(20)))
    assert results == [{"enabled": True, "present": True}] * 20


async def test_errors_raise_execute_error(client: QMPClient) -> None:
    with pytest.raises(ExecuteError) as caught:
        await run(client, "set-vcpu-dirty-limit", {"dirty-rate": 10, "cpu-index": 2})
    assert caught.value.error_class == "GenericError"
    assert caught.value.error.error.desc == "incorrect cpu index specified"
    with pytest.raises(ExecuteError) as caught:
        await run(client, "no-such-command")
    assert caught.value.error_class == "CommandNotFound"
    assert caught.value.error.error.desc == "The command no-such-command has not been found"
    with pytest.raises(ExecuteError) as caught:
        await run(client, "set-vcpu-dirty-limit", {})
    assert caught.value.error.error.desc == "Parameter 'dirty-rate' is missing"
    # the session goes on
    assert await run(client, "query-vcpu-dirty-limit") == []


async def test_dirty_limit_round_trip(client: QMPClient) -> None:
    await run(client, "set-vcpu-dirty-limit", {"dirty-rate": 250, "cpu-index": 1})
    limits = await run(client, "query-vcpu-dirty-limit")
    assert isinstance(limits, list) and len(limits) == 1
    assert limits[0]["cpu-index"] == 1 and limits[0]["limit-rate"] == 250
    assert list(limits[0]) == ["limit-rate", "current-rate", "cpu-index"]
    await run(client, "cancel-vcpu-dirty-limit", {"cpu-index": 1})
    assert await run(client, "query-vcpu-dirty-limit") == []


async def test_events_reach_listeners(client: QMPClient) -> None:
    with client.listener(("STOP", "RESUME")) as listener:
        await run(client, "stop")
        stop = await asyncio.wait_for(listener.get(), TIMEOUT)
        await run(client, "cont")
        resume = await asyncio.wait_for(listener.get(), TIMEOUT)
    assert stop["event"] == "STOP" and resume["event"] == "RESUME"
    assert "data" not in stop
    assert stamp(resume) >= stamp(stop)
    assert await run(client, "query-status") == {
        "status": "running",
        "singlestep": False,
        "running": True,
    }


async def test_event_listener_filter(client: QMPClient) -> None:
    only_resume = EventListener("RESUME")
    with client.listen(only_resume):
        await run(client, "stop")
        await run(client, "cont")
        event = await asyncio.wait_for(only_resume.get(), TIMEOUT)
    assert event["event"] == "RESUME"
    assert only_resume.empty()


async def test_exec_oob(client: QMPClient) -> None:
    assert await run(client, "query-yank", oob=True) == [
        {"type": "chardev", "id": "compat_monitor0"}
    ]
    with pytest.raises(ExecuteError) as caught:
        await run(client, "query-status", oob=True)
    assert caught.value.error.error.desc == "The command query-status does not support OOB"


async def test_oob_completes_while_in_band_blocks(client: QMPClient) -> None:
    """cancel-vcpu-dirty-limit right after set waits for the throttle thread (about a
    second in qmpdl); query-yank out of band is answered meanwhile."""
    await run(client, "set-vcpu-dirty-limit", {"dirty-rate": 100})
    cancel = asyncio.ensure_future(run(client, "cancel-vcpu-dirty-limit"))
    await asyncio.sleep(0)  # let the cancel go out first
    assert await run(client, "query-yank", oob=True) == [
        {"type": "chardev", "id": "compat_monitor0"}
    ]
    assert not cancel.done()
    assert await cancel == {}
    assert await run(client, "query-vcpu-dirty-limit") == []


async def test_manual_negotiation_without_oob(plain_client: QMPClient) -> None:
    assert plain_client.greeting is not None
    # before negotiation every command but qmp_capabilities is unknown
    with pytest.raises(ExecuteError) as caught:
        await run(plain_client, "query-status")
    assert caught.value.error_class == "CommandNotFound"
    assert (
        caught.value.error.error.desc
        == "Expecting capabilities negotiation with 'qmp_capabilities'"
    )
    assert await run(plain_client, "qmp_capabilities") == {}
    assert await run(plain_client, "query-kvm") == {"enabled": True, "present": True}
    # OOB was not enabled: exec-oob is an unexpected member
    with pytest.raises(ExecuteError) as caught:
        await run(plain_client, "query-yank", oob=True)
    assert caught.value.error.error.desc == "QMP input member 'exec-oob' is unexpected"
    with pytest.raises(ExecuteError) as caught:
        await run(plain_client, "qmp_capabilities")
    assert (
        caught.value.error.error.desc
        == "Capabilities negotiation is already complete, command ignored"
    )
    with plain_client.listener("STOP") as listener:
        await run(plain_client, "stop")
        assert (await asyncio.wait_for(listener.get(), TIMEOUT))["event"] == "STOP"
    await run(plain_client, "cont")
