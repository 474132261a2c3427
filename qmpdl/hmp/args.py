"""Parsing a command's arguments according to its ``args_type``.

``args_type`` is a comma-separated list of ``key:type`` items.  The types qmpdl serves:

``l``      an integer expression (see :mod:`qmpdl.hmp.expr`), int64
``i``      the same, refused when its upper 32 bits are not zero
``s``      one word (see :func:`qmpdl.hmp.words.read_word`)
``S``      the rest of the line, verbatim
``b``      ``on`` or ``off`` (exactly: the next run of printable characters)
``-X``     a flag ``-X``; absent flags are simply not set
``/``      a memory dump's ``/fmt`` (see :mod:`qmpdl.hmp.dumpfmt`), stored as ``count``,
           ``format`` and ``size`` whatever the item's key
``?``      after ``l``, ``s`` or ``S``: optional when the line has nothing left

Flags are matched in order: at a ``-Y`` that is not the current flag, parsing moves on to
the next item when ``-Y`` occurs anywhere later in ``args_type``, and fails with
"unsupported option" otherwise.  QEMU does not require a blank after a flag letter, so
``-r1`` is the flag ``-r`` and then ``1``.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpdl.errors import QmpdlError
from qmpdl.hmp.cchar import printed_char, skip_space
from qmpdl.hmp.command import Args, HmpCommand
from qmpdl.hmp.dumpfmt import DumpDefaults, FormatError, parse_format
from qmpdl.hmp.expr import ExprError, RegisterLookup, evaluate
from qmpdl.hmp.words import read_word


class ArgumentError(QmpdlError):
    """The line does not fit ``args_type``; ``text`` is what QEMU prints (maybe without
    a final newline)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class ArgSpec:
    """One ``key:type`` item.  ``rest`` is the raw ``args_type`` after a flag's letter,
    where QEMU searches for the other flags."""

    key: str
    kind: str
    optional: bool = False
    flag: str = ""
    rest: str = ""


def parse_args_type(args_type: str) -> list[ArgSpec]:
    """Split ``args_type`` into its items."""
    specs: list[ArgSpec] = []
    pos = 0
    while True:
        if args_type.startswith(",", pos):
            pos += 1
        colon = args_type.find(":", pos)
        if colon < 0:
            return specs
        key = args_type[pos:colon]
        kind = args_type[colon + 1 : colon + 2]
        pos = colon + 2
        if kind == "-":
            flag = args_type[pos : pos + 1]
            pos += 1
            specs.append(ArgSpec(key, kind, flag=flag, rest=args_type[pos:]))
            continue
        optional = args_type.startswith("?", pos)
        if optional:
            pos += 1
        specs.append(ArgSpec(key, kind, optional=optional))


def parse_arguments(
    cmd: HmpCommand,
    line: str,
    pos: int,
    registers: RegisterLookup | None = None,
    dump_defaults: DumpDefaults | None = None,
) -> Args:
    """The arguments of ``cmd`` found in ``line[pos:]``; raises :class:`ArgumentError`.

    ``registers`` resolves ``$name`` in expressions; ``dump_defaults`` is the remembered
    memory dump format a ``/`` item reads and updates (a fresh one when ``None``).
    """
    args: Args = {}
    end = len(line)
    for spec in parse_args_type(cmd.args_type):
        pos = skip_space(line, pos)
        at_end = pos >= end
        if spec.kind == "-":
            pos = _flag(cmd, spec, line, pos, args)
        elif spec.optional and at_end:
            continue
        elif spec.kind in ("l", "i"):
            try:
                args[spec.key], pos = evaluate(line, pos, registers)
            except ExprError as err:
                raise ArgumentError(err.message + "\n") from None
            if spec.kind == "i" and (args[spec.key] >> 32) & 0xFFFFFFFF:  # type: ignore[operator]
                raise ArgumentError(f"'{cmd.name}' has failed: integer is for 32-bit values\n")
        elif spec.kind == "/":
            if dump_defaults is None:
                dump_defaults = DumpDefaults()
            try:
                found, pos = parse_format(line, pos, dump_defaults)
            except FormatError as err:
                raise ArgumentError(err.message + "\n") from None
            args.update(count=found.count, format=found.format, size=found.size)
        elif spec.kind == "s":
            word = read_word(line, pos)
            if word is None:
                raise ArgumentError(f"{cmd.name}: string expected\n")
            args[spec.key], pos = word
        elif spec.kind == "b":
            word_end = pos
            while word_end < end and _is_graph(line[word_end]):
                word_end += 1
            token = line[pos:word_end]
            if token not in ("on", "off"):
                raise ArgumentError("Expected 'on' or 'off'\n")
            args[spec.key], pos = token == "on", word_end
        elif spec.kind == "S":
            if at_end:
                raise ArgumentError(f"{cmd.name}: string expected\n")
            args[spec.key], pos = line[pos:], end
        elif spec.kind:
            raise ArgumentError(f"{cmd.name}: unknown type '{spec.kind}'\n")
        else:
            raise ArgumentError(f"{cmd.name}: unknown type '")
    if skip_space(line, pos) < end:
        raise ArgumentError(f"{cmd.name}: extraneous characters at the end of line\n")
    return args


def _is_graph(char: str) -> bool:
    """C's ``isgraph`` for the byte QEMU sees (UTF-8 bytes beyond ASCII are not)."""
    return "!" <= char <= "~"


def _flag(cmd: HmpCommand, spec: ArgSpec, line: str, pos: int, args: Args) -> int:
    """Handle a flag item at ``pos`` (already past whitespace); returns the new position."""
    if not spec.flag:
        # "-" closes args_type: QEMU prints the NUL after it with %c, ending the message.
        raise ArgumentError(f"{cmd.name}: unknown type '")
    if not line.startswith("-", pos):
        return pos
    letter = line[pos + 1 : pos + 2]
    if letter == spec.flag:
        args[spec.key] = True
        return pos + 2
    if "-" + letter[:1] in spec.rest:
        # Another flag of this command: leave it to its own item.
        return pos
    if not letter:
        # QEMU formats the terminating NUL with %c, which cuts its message short.
        raise ArgumentError(f"{cmd.name}: unsupported option -")
    raise ArgumentError(f"{cmd.name}: unsupported option -{printed_char(letter)}\n")
