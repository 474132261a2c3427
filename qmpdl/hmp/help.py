"""``help`` and the ``info`` list: one line per command, in table order."""

from __future__ import annotations

from collections.abc import Sequence

from qmpdl.hmp.command import HmpCommand, Monitor
from qmpdl.hmp.words import split_words


def matches(word: str, cmd: HmpCommand) -> bool:
    """True when ``word`` is the command's name or one of its aliases."""
    return word in cmd.names()


def find(table: Sequence[HmpCommand], word: str) -> HmpCommand | None:
    """The first entry of ``table`` called ``word``."""
    return next((cmd for cmd in table if matches(word, cmd)), None)


def help_line(cmd: HmpCommand, prefix: Sequence[str] = ()) -> str:
    """The text ``help`` prints for ``cmd`` (``help`` may span several lines)."""
    lead = "".join(f"{word} " for word in prefix)
    return f"{lead}{cmd.name} {cmd.params} -- {cmd.help}\n"


def _dump(mon: Monitor, table: Sequence[HmpCommand], words: list[str], index: int) -> None:
    if index >= len(words):
        for entry in table:
            mon.print(help_line(entry, words[:index]))
        return
    cmd = find(table, words[index])
    if cmd is None:
        mon.print(f"unknown command: '{' '.join(words[: index + 1])}'\n")
    elif cmd.sub_table:
        _dump(mon, cmd.sub_table, words, index + 1)
    else:
        mon.print(help_line(cmd, words[:index]))


def show_help(mon: Monitor, topic: str | None) -> None:
    """``help [topic]``: every command, or the entries ``topic`` names.

    Words after a command that has no sub-commands are ignored, as in QEMU; a malformed
    topic (unclosed quote, bad escape, more than 16 words) prints nothing.
    """
    words = [] if topic is None else split_words(topic)
    if words is not None:
        _dump(mon, mon.commands, words, 0)
