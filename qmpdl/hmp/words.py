"""Splitting a monitor line into words: command names and (optionally quoted) strings."""

from __future__ import annotations

from qmpdl.hmp.cchar import is_space, skip_space, utf8_prefix

#: QEMU copies a word into a 1024-byte buffer (including its NUL).
WORD_BYTES = 1023
#: ``help`` splits its argument into at most this many words.
MAX_WORDS = 16

_ESCAPES = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def command_name(text: str, pos: int) -> tuple[str, int] | None:
    """The command name at ``pos`` (after whitespace) and the index just past it.

    A name ends at whitespace, at ``/`` (the start of a format like ``x/4x``) or at the end
    of the line; ``None`` when the rest of the line is blank.
    """
    pos = skip_space(text, pos)
    if pos >= len(text):
        return None
    end = pos
    while end < len(text) and text[end] != "/" and not is_space(text[end]):
        end += 1
    return text[pos:end], end


def read_word(text: str, pos: int) -> tuple[str, int] | None:
    """One word at ``pos``: a run of non-blanks or a double-quoted string with escapes.

    Returns the word and the index after it, or ``None`` when there is no word, a quote
    is not closed, or an escape other than ``\\n \\r \\\\ \\' \\"`` is used (QEMU then writes
    its complaint to its own stdout, never to the monitor).
    """
    pos = skip_space(text, pos)
    end = len(text)
    if pos >= end:
        return None
    chars: list[str] = []
    if text[pos] == '"':
        pos += 1
        while pos < end and text[pos] != '"':
            if text[pos] == "\\":
                escaped = _ESCAPES.get(text[pos + 1 : pos + 2])
                if escaped is None:
                    return None
                chars.append(escaped)
                pos += 2
            else:
                chars.append(text[pos])
                pos += 1
        if pos >= end:
            return None
        pos += 1
    else:
        start = pos
        while pos < end and not is_space(text[pos]):
            pos += 1
        chars.append(text[start:pos])
    return utf8_prefix("".join(chars), WORD_BYTES), pos


def split_words(text: str) -> list[str] | None:
    """All words of ``text`` as ``help`` sees them; ``None`` if one is malformed or there
    are more than :data:`MAX_WORDS`."""
    words: list[str] = []
    pos = 0
    while True:
        pos = skip_space(text, pos)
        if pos >= len(text):
            return words
        if len(words) >= MAX_WORDS:
            return None
        word = read_word(text, pos)
        if word is None:
            return None
        words.append(word[0])
        pos = word[1]
