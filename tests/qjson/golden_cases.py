"""The inputs of the golden corpus: what is sent to QEMU (and to our parser) per case.

Each case is sent on a fresh QMP connection (fresh parser, negotiation mode), followed by
:data:`SENTINEL`, whose ``\\x01`` forces QEMU's lexer back into a known state and whose
object's reply (carrying the id ``"@end"``) marks the end of the case's replies.

Inputs are lists of ``(chunk, repeat)`` parts so that the multi-megabyte limit cases stay
small in the golden file.  ``kind`` is ``"normal"``, ``"slow"`` (a few MiB, seconds in
QEMU) or ``"huge"`` (64 MiB and more: minutes in QEMU, which reads one byte per system
call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SENTINEL = b'\x01{"execute":"qmp_capabilities","id":"@end"}'
END_MARK = '"@end"'

Kind = Literal["normal", "slow", "huge"]
Part = tuple[bytes, int]

MIB = 1 << 20
TOKEN_SIZE = 64 * MIB
TOKEN_COUNT = 2 * MIB
NESTING = 1024


@dataclass(frozen=True)
class Case:
    name: str
    parts: tuple[Part, ...]
    pretty: bool = False
    kind: Kind = "normal"
    tags: tuple[str, ...] = field(default=())

    def data(self) -> bytes:
        """The case's input (without the sentinel)."""
        return b"".join(chunk * count for chunk, count in self.parts)


def cap(id_json: bytes) -> bytes:
    """``qmp_capabilities`` carrying ``id_json`` verbatim: QEMU echoes the parsed id."""
    return b'{"execute":"qmp_capabilities","id":' + id_json + b"}"


def _cases() -> list[Case]:
    cases: list[Case] = []
    names: set[str] = set()

    def add(name: str, *parts: bytes | Part, pretty: bool = False, kind: Kind = "normal") -> None:
        assert name not in names, name
        names.add(name)
        normal = tuple(p if isinstance(p, tuple) else (p, 1) for p in parts)
        cases.append(Case(name, normal, pretty, kind))

    # --- well-formed requests -------------------------------------------------------------
    add("caps", b'{"execute":"qmp_capabilities"}')
    add("caps-spaces", b'{ "execute" : "qmp_capabilities" }')
    add("caps-all-whitespace", b' \t\r\n{\t"execute"\r:\n"qmp_capabilities"\r\n,\t"id"  :  1 }\r\n')
    add("caps-args-empty", b'{"execute":"qmp_capabilities","arguments":{},"id":"x"}')
    add("caps-single-quotes", b"{'execute':'qmp_capabilities','id':'sq'}")
    add("caps-sq-escapes", b"{'execute':'qmp_capabilities','id':'it\\'s \"q\" \\\"'}")
    add("caps-dq-apostrophe", b'{"execute":"qmp_capabilities","id":"it\'s \\\'"}')
    add("caps-twice", b'{"execute":"qmp_capabilities"}{"execute":"qmp_capabilities","id":2}')
    add("concatenated-three", b'{"execute":"query-status","id":0}' + cap(b"1") + cap(b"2"))
    add("negotiation-other-command", b'{"execute":"query-status"}')
    add("negotiation-other-command-id", b'{"execute":"query-status","id":[1]}')
    add("negotiation-unknown-command", b'{"execute":"no-such-command","id":"n"}')

    # --- QMP-level validation (the parser's dict order shows through) -----------------------
    add("qmp-empty-object", b"{}")
    add("qmp-null", b"null ")
    add("qmp-array", b"[]")
    add("qmp-array-items", b'[{"execute":"qmp_capabilities"}]')
    add("qmp-string", b'"qmp_capabilities"')
    add("qmp-number", b"42 ")
    add("qmp-execute-true", b'{"execute":true}')
    add("qmp-execute-true-id", b'{"id":5,"execute":true}')
    add("qmp-arguments-array", b'{"execute":"qmp_capabilities","arguments":[]}')
    add("qmp-extra-key", b'{"execute":"qmp_capabilities","extra":1}')
    add("qmp-extra-key-id", b'{"id":5,"foo":1}')
    add("qmp-extra-keys-order-1", b'{"zz":1,"aa":2,"execute":"x"}')
    add("qmp-extra-keys-order-2", b'{"aa":1,"zz":2,"execute":"x"}')
    add("qmp-extra-keys-bucket-1", b'{"a":1,"rb":2,"rr":3,"execute":"x"}')
    add("qmp-extra-keys-bucket-2", b'{"rr":1,"rb":2,"a":3,"execute":"x"}')
    add("qmp-exec-oob-not-enabled", b'{"exec-oob":"qmp_capabilities","id":9}')
    add("qmp-execute-and-bad-arguments", b'{"arguments":1,"execute":1}')

    # --- id echo: strings ----------------------------------------------------------------
    add("id-empty-string", cap(b'""'))
    add("id-ascii", cap(b'"' + bytes(c for c in range(0x20, 0x7F) if c not in b'"\\') + b'"'))
    add("id-del", cap(b'"a\x7fb"'))
    add("id-short-escapes", cap(b'"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\\'"'))
    add("id-slash", cap(b'"a/b\\/c"'))
    add("id-u0000", cap(b'"a\\u0000b"'))
    add(
        "id-u-control",
        cap(b'"' + b"".join(b"\\u%04x" % c for c in range(0x20)) + b'"'),
    )
    add(
        "id-u-bmp",
        cap(b'"\\u007f\\u0080\\u00ff\\u0100\\u07ff\\u0800\\u20ac\\ufdcf\\ufdf0\\ufffd"'),
    )
    add("id-u-hex-case", cap(b'"\\uabcd\\uABCD\\uAbCd\\u00e9\\u00E9"'))
    add("id-u-escaped-ascii", cap(b'"\\u0041\\u0022\\u005c\\u002f\\u0027"'))
    add("id-u-pair", cap(b'"\\ud83d\\ude00\\uD800\\uDC00\\uDBFF\\uDFFD"'))
    add("id-raw-utf8", cap('"é€😀\U0010fffd߿ࠀ"'.encode()))
    add("id-raw-c080", cap(b'"a\xc0\x80b"'))
    add("id-long-string", cap(b'"' + b"x" * 5000 + b'"'))
    add("id-percent", cap(b'"%p %s %%"'))

    # --- invalid \u escapes -----------------------------------------------------------------
    for name, esc in [
        ("lone-high", b"\\uD800"),
        ("lone-high-end", b"x\\uDBFF"),
        ("lone-low", b"\\uDC00"),
        ("high-then-ascii", b"\\uD800\\u0041"),
        ("high-then-high", b"\\uD800\\uD800"),
        ("high-then-n", b"\\uD800\\n"),
        ("high-then-bad-hex", b"\\uD800\\u12"),
        ("high-then-text", b"\\uD800abc"),
        ("nonchar-fdd0", b"\\uFDD0"),
        ("nonchar-fdef", b"\\ufdef"),
        ("nonchar-fffe", b"\\uFFFE"),
        ("nonchar-ffff", b"\\uffff"),
        ("nonchar-pair-1fffe", b"\\uD83F\\uDFFE"),
        ("nonchar-pair-10ffff", b"\\uDBFF\\uDFFF"),
        ("short-2", b"\\u12"),
        ("short-0", b"\\u"),
        ("bad-hex", b"\\u12G4"),
        ("utf8-after-u", "\\u1é".encode()),
        ("utf8-cut", "\\u123é".encode()),
        ("space-hex", b"\\u 123"),
    ]:
        add(f"bad-unicode-{name}", cap(b'"' + esc + b'"'))
    add("bad-unicode-at-token-end", b'"\\u1"')
    add("bad-unicode-sq", cap(b"'\\uD800'"))

    # --- invalid escapes ------------------------------------------------------------------
    for name, esc in [
        ("a", b"\\a"),
        ("zero", b"\\0"),
        ("U", b"\\U0041"),
        ("x", b"\\x41"),
        ("space", b"\\ "),
        ("utf8", "\\é".encode()),
        ("del", b"\\\x7f"),
        ("0x80", b"\\\x80"),
    ]:
        add(f"bad-escape-{name}", cap(b'"' + esc + b'"'))
    add("bad-escape-then-bad-unicode", cap(b'"\\q\\uD800"'))
    add("bad-unicode-then-bad-escape", cap(b'"\\uD800\\q"'))
    add("bad-utf8-then-bad-escape", cap(b'"\xff"'))

    # --- invalid UTF-8 inside strings (parser error) --------------------------------------
    for name, raw in [
        ("lone-continuation", b"\x80"),
        ("overlong-2", b"\xc0\xaf"),
        ("overlong-c1", b"\xc1\xbf"),
        ("overlong-3", b"\xe0\x80\xaf"),
        ("overlong-4", b"\xf0\x80\x80\xaf"),
        ("surrogate", b"\xed\xa0\x80"),
        ("nonchar-fffe", b"\xef\xbf\xbe"),
        ("nonchar-fdd0", b"\xef\xb7\x90"),
        ("nonchar-1ffff", b"\xf0\x9f\xbf\xbf"),
        ("beyond-10ffff", b"\xf4\x90\x80\x80"),
        ("lead-f5", b"\xf5\x80\x80\x80"),
        ("five-byte", b"\xf8\x88\x80\x80\x80"),
        ("six-byte", b"\xfc\x84\x80\x80\x80\x80"),
        ("truncated-3", b"\xe2\x82"),
        ("truncated-then-ascii", b"\xc3A"),
        ("valid-then-invalid", "é".encode() + b"\xc3"),
    ]:
        add(f"bad-utf8-{name}", cap(b'"' + raw + b'"'))

    # --- lexical errors inside strings (stray) ---------------------------------------------
    for name, raw in [
        ("nul", b"\x00"),
        ("soh", b"\x01"),
        ("tab", b"\t"),
        ("newline", b"\n"),
        ("cr", b"\r"),
        ("us", b"\x1f"),
        ("fe", b"\xfe"),
        ("ff", b"\xff"),
        ("after-escape-nl", b"\\\n"),
        ("after-escape-ff", b"\\\xff"),
    ]:
        add(f"string-control-{name}", b'{"execute":"qmp_capabilities","id":"ab' + raw + b'cd"}')
    add(
        "string-invalid-bytes-in-stray",
        b'"\xc0\xaf\xe2\x82\xf8\x88\x80\x80\x80\x80\x80\xed\xa0\x80\xef\xbf\xbf\xc3\xa9\n',
    )
    add("string-stray-cut-utf8", b'"\xe2\x82\x01')
    add("string-stray-c080", b'"a\xc0\x80b\x01')
    add("string-sq-newline", b"{'execute':'x\n'}")

    # --- numbers -----------------------------------------------------------------------------
    add(
        "id-numbers",
        cap(
            b"[0,-0,1,-1,1.5,-1.5,1e5,1E5,1e+5,1e-5,1E-0,0.0,-0.0,1.0,0.1,0.5e1,"
            b"123.456e-7,9007199254740993,1e22,1e23]"
        ),
    )
    add(
        "id-int-limits",
        cap(
            b"[9223372036854775807,9223372036854775808,-9223372036854775808,"
            b"-9223372036854775809,18446744073709551615,18446744073709551616,"
            b"-18446744073709551616,123456789012345678901234567890]"
        ),
    )
    add(
        "id-float-limits",
        cap(
            b"[1e308,1.7976931348623157e308,1.7976931348623159e308,1e309,-1e309,"
            b"2.2250738585072014e-308,5e-324,2.4e-324,2.5e-324,3e-324,1e-400,-1e-400]"
        ),
    )
    add("id-huge-integer", cap(b"1" + b"0" * 400))
    add("id-long-integer", cap(b"9" * 5000))
    add("id-long-mantissa", cap(b"0." + b"0" * 400 + b"1"))
    add("id-long-fraction", cap(b"1." + b"3" * 1000))
    add("id-number-top-nl", b"12\n")
    add("id-float-top", b"-1.5e3 ")

    # --- lexical errors in numbers ---------------------------------------------------------
    for name, raw in [
        ("leading-zero", b"01 "),
        ("double-zero", b"00"),
        ("neg-leading-zero", b"-01"),
        ("minus-alone", b"- "),
        ("minus-letter", b"-a"),
        ("minus-brace", b"-}"),
        ("dot-bracket", b"1.]"),
        ("dot-e", b"1.e5"),
        ("e-comma", b"1e,"),
        ("e-sign-x", b"1e+x"),
        ("leading-dot", b".5"),
        ("plus", b"+1"),
        ("two-dots", b"1.5.3 "),
        ("exp-dot", b"1e5.5 "),
        ("int-then-minus", b"1-2 "),
        ("int-letter", b"2x "),
        ("int-upper", b"2X"),
        ("zero-letter", b"0x1F "),
        ("in-object", b'{"execute":"qmp_capabilities","id":01}'),
        ("in-object-minus", b'{"execute":"qmp_capabilities","id":-}'),
    ]:
        add(f"number-{name}", raw)

    # --- keywords ------------------------------------------------------------------------
    add("id-keywords", cap(b"[true,false,null]"))
    for name, raw in [
        ("upper", b'{"id": TRUE}'),
        ("capitalised", b"True "),
        ("mixed", b"tRUE "),
        ("partial", b"tru "),
        ("longer", b"truex "),
        ("then-digit", b"null1 "),
        ("nan", b"NaN "),
        ("infinity", b"Infinity "),
        ("in-object", b'{"execute":"qmp_capabilities","id":nul}'),
        ("key", b"{tru:1}"),
        ("key-valid", b"{true:1}"),
        ("long", b"[" + b"a" * 2000 + b"]"),
        ("long-1006", b"[" + b"b" * 1006 + b"]"),
        ("long-1007", b"[" + b"b" * 1007 + b"]"),
    ]:
        add(f"keyword-{name}", raw)

    # --- syntax errors ---------------------------------------------------------------------
    for name, raw in [
        ("rcurly", b"}"),
        ("rsquare", b"]"),
        ("colon", b":"),
        ("comma", b","),
        ("curly-square", b"{]"),
        ("square-curly", b"[}"),
        ("square-curly-square", b"[}]"),
        ("extra-rcurly", b"{}}"),
        ("dict-then-square", b'{"a":1]'),
        ("list-then-curly", b"[1}"),
        ("missing-colon", b'{"a" 1}'),
        ("missing-colon-string", b'{"execute" "x"}'),
        ("missing-value", b'{"a":}'),
        ("missing-value-space", b'{ "execute": }'),
        ("missing-key", b"{:1}"),
        ("number-key", b"{1:1}"),
        ("object-key", b"{{}:1}"),
        ("array-key", b"{[]:1}"),
        ("bad-key-inner", b"{{]:1}"),
        ("trailing-comma-dict", b'{"a":1,}'),
        ("trailing-comma-list", b"[1,]"),
        ("leading-comma-list", b"[,1]"),
        ("comma-only-dict", b"{,}"),
        ("comma-only-list", b"[,]"),
        ("missing-comma-dict", b'{"a":1 "b":2}'),
        ("missing-comma-list", b"[1 2]"),
        ("colon-in-list", b"[1:2]"),
        ("double-colon", b'{"a":1:2}'),
        ("key-only", b'{"a"}'),
        ("extra-rsquare", b"[[]]]"),
        ("nested-extra", b'{"a":{}}}'),
        ("dict-in-dict-no-key", b"{{}}"),
        ("duplicate-key", b'{"a":1,"a":2}'),
        ("duplicate-key-sq", b"{'a':1,\"a\":2}"),
        ("duplicate-key-escaped", b'{"a":1,"\\u0061":2}'),
        ("duplicate-key-then-bad", b'{"a":1,"a":2,]'),
        ("duplicate-key-bad-value", b'{"a":1,"a":x}'),
        ("duplicate-key-nested", b'{"execute":"qmp_capabilities","id":{"b":{"c":1,"c":1}}}'),
        ("duplicate-key-nul", b'{"a\\u0000":1,"a\\u0000":2}'),
        ("not-duplicate-nul", cap(b'{"a":1,"a\\u0000":2,"\\u0000":3,"":4}')),
        ("error-in-key-string", b'{"\\q":1}'),
        ("error-value-before-separator", b'{"a":"\\q" "b"}'),
        ("first-error-wins", b'{"a":"\\q","b":tru}'),
        ("bad-keyword-before-dup", b'{"a":1,"a":tru}'),
    ]:
        add(f"syntax-{name}", raw)

    # --- stray bytes and recovery ---------------------------------------------------------
    for name, raw in [
        ("at", b"@"),
        ("hash", b"#"),
        ("percent-p", b'{"execute": %p}'),
        ("percent-alone", b"%"),
        ("backslash", b"\\"),
        ("star", b"*"),
        ("slash", b"/"),
        ("upper", b"Q"),
        ("nul", b"\x00"),
        ("soh", b"\x01"),
        ("vt", b"\x0b"),
        ("us", b"\x1f"),
        ("del", b"\x7f"),
        ("0x80", b"\x80"),
        ("lead-c3", b"\xc3"),
        ("utf8-e9", "é".encode()),
        ("fe", b"\xfe"),
        ("ff", b"\xff"),
        ("ff-ff", b"\xff\xff"),
    ]:
        add(f"stray-{name}", raw)
    good = cap(b'"after"')
    for name, sep in [
        ("skip-text", b"abc def"),
        ("skip-tab", b"\t\t"),
        ("skip-del", b"\x7f"),
        ("skip-high", b"\x80\xc3\xa9\xfd"),
        ("skip-quote", b'"x'),
        ("resync-lf", b"\n"),
        ("resync-cr", b"\r"),
        ("resync-nul", b"\x00"),
        ("resync-soh", b"x\x01"),
        ("resync-fe", b"\xfe"),
        ("resync-ff", b"\xff"),
        ("resync-comma", b","),
        ("resync-colon", b":"),
        ("resync-rsquare", b"]"),
        ("resync-rcurly", b"}"),
        ("resync-lsquare", b"["),
    ]:
        add(f"recovery-{name}", b"@" + sep + good)
    add("recovery-mid-object", b'{"execute": @, "id": 1}')
    add("recovery-quote-brace", b'@"{"execute":"qmp_capabilities"}')
    add("recovery-string-then-object", b'"ab\x01cd"' + good)
    add("recovery-in-nested", b'{"execute":"qmp_capabilities","id":[1,{"a":@}],"x":2}' + good)
    add("recovery-after-number-error", b"01abc," + good)

    # --- top-level scalars and message boundaries ------------------------------------------
    add("scalar-then-object", b"1" + good)
    add("scalar-string-then-object", b'"s"' + good)
    add("scalar-keyword-space", b"true " + good)
    add("scalar-keyword-brace", b"null}")
    add("scalar-number-brace", b"1}")
    add("scalar-number-bracket", b"1]")
    add("scalar-many", b"1 2 3 \"4\" '5' [6] {} null ")
    add("object-then-scalar", good + b"7 ")
    add("two-errors-one-byte", b"1}}")
    add("scalar-adjacent", b"1\"a\"2'b'-3.5true null[4]5x ")
    add("utf8-bom-before-request", b"\xef\xbb\xbf" + good)
    add("libvirt-style", b'{"execute":"qmp_capabilities","id":"libvirt-1"}\r\n')

    # --- nesting ---------------------------------------------------------------------------
    add("nesting-1024-arrays", cap(b"[" * 1023 + b"]" * 1023))
    add("nesting-1024-mixed", cap(b'{"a":[' * 511 + b"{}" + b"]}" * 511))
    add("nesting-1025-arrays", b"[" * 1025 + b"]" * 3)
    add("nesting-1025-in-object", cap(b"[" * 1024 + b"]" * 1024))
    add("nesting-1025-objects", b'{"a":' * 1025 + b"1" + b"}" * 2)
    add("nesting-negative-mix", b"[" * 3 + b"}" + b"]" * 3)

    # --- key order (QDict hash buckets) ---------------------------------------------------
    letters = enumerate(b"abcdefghijklmnopqrstuvwxyz")
    add("order-alphabet", cap(b"{" + b",".join(b'"%c":%d' % (c, i) for i, c in letters) + b"}"))
    add("order-bucket-1", cap(b'{"a":1,"rb":2,"rr":3,"cea":4}'))
    add("order-bucket-2", cap(b'{"cea":1,"rr":2,"rb":3,"a":4}'))
    add(
        "order-qmp-keys",
        cap(
            b'{"return":1,"error":2,"id":3,"class":4,"desc":5,"execute":6,"arguments":7,'
            b'"QMP":8,"event":9,"data":10,"timestamp":11}'
        ),
    )
    add(
        "order-unicode-keys",
        cap('{"é":1,"😀":2,"\\u0000":3,"":4,"ab\\n":5,"\\u00e9x":6}'.encode()),
    )
    add("order-nested", cap(b'{"b":{"y":[{"q":1,"p":2}],"x":{}},"a":[]}'))

    # --- splitting is invisible to QEMU, but the corpus runs it through chunked feeds ------
    add(
        "split-candidates",
        cap(b'{"k":"v\\u00e9\\ud83d\\ude00","n":-12.5e-3,"t":true}') + b"  " + cap(b"[1,2]"),
    )

    # --- limits (slow: a few MiB) ---------------------------------------------------------
    # Tokens: { "execute" : "qmp_capabilities" , "id" : [ [ ] then ",0" pairs, then ] }
    # 8 + 2 + 2m + 2 = 2m + 12 tokens.
    pairs_ok = (TOKEN_COUNT - 12) // 2
    add(
        "limit-token-count-exact",
        b'{"execute":"qmp_capabilities","id":[[]',
        (b",0", pairs_ok),
        b"]}",
        kind="slow",
    )
    # [ [ ] then m ",0" pairs then ]: 2m + 4 tokens; with m = Mi - 1 the token that breaks
    # the limit is the last 0, and the final ] starts a new message.
    add("limit-token-count-exceeded", b"[[]", (b",0", MIB - 1), b"]", kind="slow")
    add(
        "limit-token-count-exceeded-object", b'{"a":[[]', (b",0", MIB - 3), b",1,2,3]}", kind="slow"
    )

    # --- limits (huge: 64 MiB tokens) -----------------------------------------------------
    # ["x...x"]: tokens [ (1) + string (L) + ] (1); the streamer refuses a token when the
    # sum so far + its length + 1 exceeds 64 MiB.
    add("limit-token-size-ok", b'["', (b"x", TOKEN_SIZE - 5), b'"]', kind="huge")
    add("limit-token-size-exceeded", b'["', (b"x", TOKEN_SIZE - 4), b'"]', kind="huge")
    # A single string token longer than 64 MiB is cut by the lexer; lexing restarts inside.
    add("limit-token-size-lexer", b'"', (b"x", TOKEN_SIZE), b'bc"}', kind="huge")

    # --- pretty monitor -------------------------------------------------------------------
    add("pretty-caps", b'{"execute":"qmp_capabilities"}', pretty=True)
    add(
        "pretty-nested-id",
        cap(b'{"a":[],"b":{},"c":[1,{"x":[[]]},"s"],"d":{"e":{"f":null}},"g":"\\n"}'),
        pretty=True,
    )
    add("pretty-errors", b'{"id":[],"execute":1}}@', pretty=True)
    add("pretty-scalar-id", cap(b"-0.0") + cap(b'"x"'), pretty=True)

    return cases


CASES: list[Case] = _cases()
