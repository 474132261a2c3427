"""The human monitor on a socket, with QEMU's line editor: qmpdl's bytes equal QEMU
7.2's for every chunk of keystrokes of :mod:`tests.hmp.readline_sessions` (thread ids
and measured rates masked) - typing and redrawing, editing keys, history, completion,
commands and their errors - and the recording is what the binary still sends."""

from __future__ import annotations

import json

import pytest

from qmpdl.hmp.readline import LineEditor
from qmpdl.hmp.session import HmpSession, completions
from qmpdl.hmp.table import commands_for
from qmpdl.profile import get_profile
from tests.hmp.readline_sessions import GOLDEN, QEMU, QMPDL, STEPS, session

RECORDED = json.loads(GOLDEN.read_text())


def test_the_recording_has_every_step() -> None:
    assert RECORDED["steps"] == [s.decode("latin-1") for s in STEPS]
    assert len(RECORDED["outputs"]) == len(STEPS) + 1


def test_qmpdl_sends_what_qemu_sends() -> None:
    assert session(QMPDL) == RECORDED["outputs"]


@pytest.mark.qemu
def test_the_recording_is_what_qemu_sends() -> None:
    assert session(QEMU) == RECORDED["outputs"]


def test_line_editor_redraws_as_qemu() -> None:
    editor = LineEditor()
    assert editor.show_prompt() == b"(qemu) "
    assert editor.feed_byte(ord("a")) is None
    assert editor.take_output() == b"a\x1b[K"
    editor.feed_byte(ord("b"))
    assert editor.take_output() == b"\x1b[Dab\x1b[K"
    editor.feed_byte(1)  # Ctrl-A: the cursor moves, the line stays
    assert editor.take_output() == b"\x1b[D\x1b[D"
    assert editor.feed_byte(13) == b"ab"
    assert editor.take_output() == b"\r\n"


def test_history_keeps_64_lines_without_repeats() -> None:
    editor = LineEditor()
    for i in range(70):
        for byte in f"c{i % 66}\n".encode():
            editor.feed_byte(byte)
    assert len(editor.history) == 64
    assert editor.history[-1] == b"c3"
    assert len(set(editor.history)) == 64


def test_completion_of_served_commands() -> None:
    table = commands_for(get_profile("7.2"))
    assert completions(b"info vc", table) == ([b"vcpu_dirty_limit"], 2)
    assert completions(b"help set_vcpu", table) == ([b"set_vcpu_dirty_limit"], 8)
    found, typed = completions(b"", table)
    assert typed == 0 and b"info" in found and b"quit" in found


def test_input_waits_while_a_command_runs() -> None:
    hmp = HmpSession("7.2.22", commands_for(get_profile("7.2")))
    assert hmp.open() == (b"QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ")
    hmp.receive(b"info status\ninfo kvm\n")
    echo, line = hmp.pump()
    assert line == "info status" and echo.endswith(b"\r\n")
    assert hmp.pump() == (b"", None)  # busy: the second line waits
    assert hmp.done("VM status: running\r\n") == b"VM status: running\r\n(qemu) "
    _, line = hmp.pump()
    assert line == "info kvm"
