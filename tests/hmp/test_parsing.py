"""Command lookup, argument parsing and the texts of their failures."""

from __future__ import annotations

import pytest

from qmpdl.hmp import execute
from qmpdl.hmp.args import ArgSpec, ArgumentError, parse_args_type, parse_arguments
from qmpdl.hmp.cchar import utf8_prefix
from qmpdl.hmp.command import Args, HmpCommand, Monitor
from qmpdl.hmp.words import command_name, read_word, split_words
from qmpdl.profile import get_profile
from tests.hmp.fakes import FakeQmp

P72 = get_profile("7.2")


def run(line: str, qmp: FakeQmp | None = None) -> str:
    return execute(line, profile=P72, qmp=qmp or FakeQmp())


def _ignore(mon: Monitor, args: Args) -> None:
    """A handler that does nothing."""


def _cmd(args_type: str) -> HmpCommand:
    return HmpCommand("demo|d", args_type, "", "", _ignore)


def parse(args_type: str, line: str) -> Args:
    return parse_arguments(_cmd(args_type), line, 0)


def parse_error(args_type: str, line: str) -> str:
    with pytest.raises(ArgumentError) as info:
        parse_arguments(_cmd(args_type), line, 0)
    return info.value.text


# --- words ---------------------------------------------------------------------------------


def test_command_name_stops_at_blank_or_slash() -> None:
    assert command_name("  stop x", 0) == ("stop", 6)
    assert command_name("x/4x 0", 0) == ("x", 1)
    assert command_name("\t\v\f\r\n", 0) is None
    assert command_name("a\u00a0b", 0) == ("a\u00a0b", 3)  # not C whitespace


def test_read_word_quotes_and_escapes() -> None:
    assert read_word('  "a b" c', 0) == ("a b", 7)
    assert read_word('"a\\"b\\n\\r\\\\\\\'"', 0) == ("a\"b\n\r\\'", 14)
    assert read_word('"x"y', 0) == ("x", 3)
    assert read_word('a"b c', 0) == ('a"b', 3)
    assert read_word('"open', 0) is None
    assert read_word('"bad \\t"', 0) is None
    assert read_word('"end\\', 0) is None
    assert read_word("   ", 0) is None


def test_split_words_limit() -> None:
    assert split_words(" a  b ") == ["a", "b"]
    assert split_words(" ".join("x" * 16)) == ["x"] * 16
    assert split_words(" ".join("x" * 17)) is None
    assert split_words('a "b') is None


def test_words_are_cut_at_1023_bytes() -> None:
    assert read_word("a" * 2000, 0) == ("a" * 1023, 2000)
    # A two-byte character straddling the limit leaves one broken byte behind.
    assert utf8_prefix("a" * 1022 + "é", 1023) == "a" * 1022 + "\ufffd"
    assert utf8_prefix("a" * 1021 + "é", 1023) == "a" * 1021 + "é"
    assert utf8_prefix("a" * 1023 + "é", 1023) == "a" * 1023


# --- args_type -----------------------------------------------------------------------------


def test_parse_args_type() -> None:
    assert parse_args_type("dirty_ring:-r,dirty_bitmap:-b,second:l,sample_pages_per_GB:l?") == [
        ArgSpec(
            "dirty_ring", "-", flag="r", rest=",dirty_bitmap:-b,second:l,sample_pages_per_GB:l?"
        ),
        ArgSpec("dirty_bitmap", "-", flag="b", rest=",second:l,sample_pages_per_GB:l?"),
        ArgSpec("second", "l"),
        ArgSpec("sample_pages_per_GB", "l", optional=True),
    ]
    assert parse_args_type("") == []
    assert parse_args_type("name:S?") == [ArgSpec("name", "S", optional=True)]


def test_integer_arguments() -> None:
    assert parse("a:l,b:l?", "1") == {"a": 1}
    assert parse("a:l,b:l?", "1 (2)") == {"a": 1, "b": 2}
    assert parse("a:l,b:l?", "1 -2") == {"a": -1}
    assert parse("a:l,b:l?", "08") == {"a": 0, "b": 8}
    assert parse_error("a:l", "") == "unexpected end of expression\n"
    assert parse_error("a:l", "1 2") == "demo|d: extraneous characters at the end of line\n"


def test_string_arguments() -> None:
    assert parse("s:s?", "") == {}
    assert parse("s:s", ' "x y" ') == {"s": "x y"}
    assert parse_error("s:s", '"x') == "demo|d: string expected\n"
    assert parse_error("s:s", "x y") == "demo|d: extraneous characters at the end of line\n"
    assert parse("rest:S", "  x  y ") == {"rest": "x  y "}
    assert parse("rest:S?", "  ") == {}
    assert parse_error("rest:S", "  ") == "demo|d: string expected\n"


def test_flags() -> None:
    spec = "r:-r,b:-b,n:l"
    assert parse(spec, "1") == {"n": 1}
    assert parse(spec, "-r 1") == {"r": True, "n": 1}
    assert parse(spec, "-b 1") == {"b": True, "n": 1}
    assert parse(spec, "-r -b 1") == {"r": True, "b": True, "n": 1}
    assert parse(spec, "-r1") == {"r": True, "n": 1}
    # Flags are taken in args_type order: after -b, "-r" is an expression.
    assert parse_error(spec, "-b -r 1") == "invalid char 'r' in expression\n"
    assert parse_error(spec, "-x 1") == "demo|d: unsupported option -x\n"
    assert parse_error(spec, "-1") == "demo|d: unsupported option -1\n"
    assert parse_error(spec, "-é") == "demo|d: unsupported option -\ufffd\n"
    # "-" at the end: QEMU's %c prints the terminating NUL and the message stops there.
    assert parse_error("b:-b,n:l", "-") == "demo|d: unsupported option -"


def test_unknown_types() -> None:
    assert parse_error("x:Z", "") == "demo|d: unknown type 'Z'\n"
    assert parse_error("x:-", "") == "demo|d: unknown type '"


# --- through execute -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("", ""),
        (" \t ", ""),
        ("foo", "unknown command: 'foo'\r\n"),
        ("  foo bar", "unknown command: '  foo'\r\n"),
        ("foo\x00", "unknown command: 'foo\x00'\r\n"),
        ("info foo", "unknown command: 'info foo'\r\n"),
        ("info  foo  bar", "unknown command: 'info  foo'\r\n"),
        ("info/x", "unknown command: 'info'\r\n"),
        ("cont|c", "unknown command: 'cont|c'\r\n"),
        (
            "stop x",
            'stop|s: extraneous characters at the end of line\r\nTry "help stop" for more'
            " information\r\n",
        ),
        (
            "  stop x",
            'stop|s: extraneous characters at the end of line\r\nTry "help   stop" for more'
            " information\r\n",
        ),
        (
            "stop/x",
            'stop|s: extraneous characters at the end of line\r\nTry "help stop" for more'
            " information\r\n",
        ),
        (
            "c x",
            'cont|c: extraneous characters at the end of line\r\nTry "help c" for more'
            " information\r\n",
        ),
        (
            "  info   version  x",
            'version: extraneous characters at the end of line\r\nTry "help   info   version"'
            " for more information\r\n",
        ),
        (
            "calc_dirty_rate -",
            'calc_dirty_rate: unsupported option -Try "help calc_dirty_rate" for more'
            " information\r\n",
        ),
        (
            "set_vcpu_dirty_limit\t",
            'unexpected end of expression\r\nTry "help set_vcpu_dirty_limit" for more'
            " information\r\n",
        ),
    ],
)
def test_lookup_and_argument_errors(line: str, output: str) -> None:
    qmp = FakeQmp()
    assert run(line, qmp) == output
    assert qmp.calls == []


def test_long_names_are_cut_for_the_lookup_only() -> None:
    name = "x" * 300
    assert run(name) == f"unknown command: '{name}'\r\n"


def test_registers_reach_expressions() -> None:
    qmp = FakeQmp()
    out = execute(
        "set_vcpu_dirty_limit $eax - 3",
        profile=P72,
        qmp=qmp,
        registers={"eax": 10}.get,
    )
    assert out.startswith("[Please use")
    assert qmp.calls == [("set-vcpu-dirty-limit", {"dirty-rate": 7})]
