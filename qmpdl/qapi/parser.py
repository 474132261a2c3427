"""Reader for QAPI schema files (the ``schema/*.json`` language of QEMU).

The language is a sequence of top-level expressions, each a JSON-like object
written with single-quoted strings, ``true``/``false``, and ``#`` comments.  A
comment block opened and closed by a line holding only ``##`` is a doc comment;
it documents the expression that follows it (or, when it starts with
``= Title``, the module).  ``{ 'include': 'file.json' }`` pulls another file in
at that point; each file is read once, at its first include.

This module only reads: it returns plain expressions with their doc comment
and source position.  :mod:`qmpdl.qapi.schema` gives them meaning.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from qmpdl.errors import QmpdlError

if TYPE_CHECKING:  # importlib.resources (pathlib, zipfile) only when files are read
    from importlib.resources.abc import Traversable

#: A parsed schema value: what the QAPI language can spell.
Value = str | bool | list["Value"] | dict[str, "Value"]


class QapiParseError(QmpdlError):
    """The schema text is malformed; the message names file and line."""


class SourceInfo(NamedTuple):
    """Where an expression starts."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Doc:
    """A doc comment split into its parts.

    ``symbol`` is the documented name (``@name:`` on the first line), ``body``
    the free text before the first member description, ``args`` the member
    descriptions, ``features`` the feature descriptions and ``sections`` the
    tagged sections such as ``Returns`` or ``Since``.
    """

    symbol: str | None = None
    body: str = ""
    args: dict[str, str] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)


class Expression(NamedTuple):
    """One top-level definition as written."""

    expr: dict[str, Value]
    doc: Doc | None
    info: SourceInfo


@functools.cache
def _token_pattern() -> re.Pattern[str]:
    """The tokenizer (compiled on first use: only the generator reads schema files)."""
    return re.compile(
        r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<punct>[{}\[\]:,])
  | (?P<string>'[^'\n]*')
  | (?P<keyword>true|false)
    """,
        re.VERBOSE,
    )


class _Tokens:
    """A cursor over one file's tokens, collecting doc comments on the way."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self.line = 1
        self.doc_lines: list[str] | None = None  # inside a ``##`` block
        self.docs: list[list[str]] = []  # finished blocks not yet claimed

    def error(self, message: str) -> QapiParseError:
        return QapiParseError(f"{self.filename}:{self.line}: {message}")

    def next(self) -> tuple[str, str] | None:
        """The next significant token as (kind, text), or None at the end."""
        while self.pos < len(self.text):
            match = _token_pattern().match(self.text, self.pos)
            if match is None:
                raise self.error(f"stray {self.text[self.pos]!r}")
            kind = match.lastgroup
            assert kind is not None
            text = match.group()
            self.pos = match.end()
            if kind == "ws":
                self.line += text.count("\n")
                continue
            if kind == "comment":
                self._comment(text)
                continue
            if self.doc_lines is not None:
                raise self.error("doc comment not closed with '##'")
            return kind, text
        if self.doc_lines is not None:
            raise self.error("doc comment not closed with '##'")
        return None

    def _comment(self, text: str) -> None:
        if text.rstrip() == "##":
            if self.doc_lines is None:
                self.doc_lines = []
            else:
                self.docs.append(self.doc_lines)
                self.doc_lines = None
            return
        if self.doc_lines is not None:
            body = text[1:]
            self.doc_lines.append(body[1:] if body.startswith(" ") else body)


def _more(tokens: _Tokens, closing: str) -> bool:
    """After a member or an element: True at a comma, False at the ``closing`` bracket."""
    token = tokens.next()
    if token == ("punct", closing):
        return False
    if token != ("punct", ","):
        raise tokens.error(f"expected ',' or '{closing}'")
    return True


def _parse_value(tokens: _Tokens, token: tuple[str, str] | None) -> Value:
    if token is None:
        raise tokens.error("unexpected end of file")
    kind, text = token
    if kind == "string":
        return text[1:-1]
    if kind == "keyword":
        return text == "true"
    if text == "{":
        obj: dict[str, Value] = {}
        token = tokens.next()
        if token == ("punct", "}"):
            return obj
        while True:
            if token is None or token[0] != "string":
                raise tokens.error("expected a string key")
            key = token[1][1:-1]
            if key in obj:
                raise tokens.error(f"duplicate key {key!r}")
            if tokens.next() != ("punct", ":"):
                raise tokens.error("expected ':'")
            obj[key] = _parse_value(tokens, tokens.next())
            if not _more(tokens, "}"):
                return obj
            token = tokens.next()
    if text == "[":
        items: list[Value] = []
        token = tokens.next()
        if token == ("punct", "]"):
            return items
        while True:
            items.append(_parse_value(tokens, token))
            if not _more(tokens, "]"):
                return items
            token = tokens.next()
    raise tokens.error(f"unexpected {text!r}")


@functools.cache
def _doc_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A tagged section's first line and a member description's (compiled when a doc
    comment is first read: the server's schema comes from generated data, without)."""
    return (
        re.compile(r"^(Returns|Since|Errors|Notes?|Example|TODO)s?:\s*(.*)$"),
        re.compile(r"^@([\w-]+):\s*(.*)$"),
    )


def parse_doc(lines: list[str]) -> Doc:
    """Split a doc comment's lines into symbol, body, members, features, sections."""
    section_line, arg_line = _doc_patterns()
    doc = Doc()
    if lines and (match := arg_line.match(lines[0])) and not match.group(2):
        doc.symbol = match.group(1)
        lines = lines[1:]
    target: dict[str, str] | None = None
    key = ""
    body: list[str] = []
    in_features = False
    for raw in lines:
        line = raw.rstrip()
        if line == "Features:":
            in_features, target = True, None
            continue
        if match := arg_line.match(line):
            target = doc.features if in_features else doc.args
            key = match.group(1)
            target[key] = match.group(2)
            continue
        if match := section_line.match(line):
            target, key = doc.sections, match.group(1)
            doc.sections[key] = match.group(2)
            continue
        if target is not None:
            if not line:
                target = None
            else:
                target[key] = f"{target[key]} {line.strip()}".strip()
            continue
        body.append(line)
    doc.body = "\n".join(body).strip()
    return doc


def schema_directory() -> Traversable:
    """Where the schema files are: ``qmpdl/schema`` (a symlink to the top-level
    ``schema/`` in the source tree, a directory of package data when installed)."""
    from importlib import resources

    return resources.files("qmpdl").joinpath("schema")


def _read(source: Traversable, name: str) -> str:
    return source.joinpath(name).read_text(encoding="utf-8")


def parse_schema(
    main: str = "qapi-schema.json", source: Traversable | None = None
) -> list[Expression]:
    """Every definition reachable from ``main``, in QAPI definition order.

    ``source`` is the directory holding the files (the installed
    ``qmpdl.schema`` package by default).
    """
    root = source if source is not None else schema_directory()
    seen: set[str] = set()
    out: list[Expression] = []

    def read_file(name: str) -> None:
        seen.add(name)
        tokens = _Tokens(_read(root, name), name)
        while (token := tokens.next()) is not None:
            line = tokens.line
            value = _parse_value(tokens, token)
            if not isinstance(value, dict):
                raise tokens.error("a top-level expression must be an object")
            docs, tokens.docs = tokens.docs, []
            if "include" in value:
                included = value["include"]
                if not isinstance(included, str):
                    raise tokens.error("'include' needs a file name")
                if included not in seen:
                    read_file(included)
                continue
            if "pragma" in value:
                continue
            # Module-level doc blocks ("= Title") document nothing in particular.
            entity_docs = [d for d in docs if not (d and d[0].startswith("="))]
            doc = parse_doc(entity_docs[-1]) if entity_docs else None
            out.append(Expression(value, doc, SourceInfo(name, line)))

    read_file(main)
    return out
