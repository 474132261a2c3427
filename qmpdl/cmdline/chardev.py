"""Character devices on the command line: ``-chardev``, ``-mon`` and the legacy forms
of ``-qmp``, ``-monitor`` and ``-serial`` (QEMU's ``qemu_chr_parse_compat``).

Backends: ``socket`` (a unix path, ``host``/``port``, or an inherited socket ``fd=N``),
``stdio``, ``pty``, ``null`` and ``file``.  Checks and texts are QEMU 7.2's; what can
only be checked when the device opens (a path that cannot be bound, an ``fd`` that is not
a socket) is checked by :mod:`qmpdl.server.chardev`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qmpdl.config import Chardev
from qmpdl.qemuopts import OptionError, Opts, OptsList, parse_bool, parse_noisily

#: QEMU's ``qemu_chardev_opts``: every key ``-chardev`` knows, with its type.
CHARDEV_OPTS = OptsList(
    "chardev",
    implied="backend",
    desc={
        "backend": "string",
        "path": "string",
        "host": "string",
        "port": "string",
        "fd": "string",
        "local": "bool",
        "localaddr": "string",
        "localport": "string",
        "to": "number",
        "ipv4": "bool",
        "ipv6": "bool",
        "wait": "bool",
        "server": "bool",
        "delay": "bool",
        "nodelay": "bool",
        "reconnect": "number",
        "telnet": "bool",
        "tn3270": "bool",
        "websocket": "bool",
        "tls-creds": "string",
        "tls-authz": "string",
        "width": "number",
        "height": "number",
        "cols": "number",
        "rows": "number",
        "mux": "bool",
        "signal": "bool",
        "name": "string",
        "debug": "number",
        "size": "size",
        "chardev": "string",
        "append": "bool",
        "logfile": "string",
        "logappend": "bool",
        "mouse": "bool",
        "clipboard": "bool",
        "abstract": "bool",
        "tight": "bool",
    },
)

#: QEMU's ``qemu_mon_opts``.
MON_OPTS = OptsList(
    "mon", implied="chardev", desc={"mode": "string", "chardev": "string", "pretty": "bool"}
)

#: The ``,key=value`` after a legacy ``unix:``/``tcp:`` address.
_COMPAT_PARAMS = OptsList("chardev")

#: The backends qmpdl has (QEMU has more: vc, ringbuf, pipe, udp, ...).
BACKENDS = ("socket", "stdio", "pty", "null", "file")

Warn = Callable[[str], None]


def parse_chardev(
    text: str, *, existing: Mapping[str, Opts], warn: Warn | None = None
) -> tuple[Opts, Chardev]:
    """``-chardev TEXT``: the parsed options (for duplicate ids) and the chardev."""
    opts = parse_noisily(CHARDEV_OPTS, text, warn=warn, existing=existing)
    return opts, chardev_from_opts(opts, f"-chardev {text}")


def chardev_from_opts(opts: Opts, option: str) -> Chardev:
    """QEMU's ``qemu_chr_new_from_opts`` up to opening: which backend, with what."""
    backend = opts.get("backend")
    if opts.id is None:
        raise OptionError("chardev: no id specified")
    if backend is None:
        raise OptionError(f'chardev: "{opts.id}" missing backend')
    if backend not in BACKENDS:
        raise OptionError(f"'{backend}' is not a valid char driver name")
    fields: dict[str, object] = {"id": opts.id, "backend": backend, "option": option}
    if backend == "socket":
        fields.update(_socket(opts))
    elif backend == "file":
        path = opts.get("path")
        if path is None:
            raise OptionError("chardev: file: no filename given")
        fields["path"] = path
        fields["append"] = opts.get_bool("append", False)
    return Chardev.model_validate(fields)


def _socket(opts: Opts) -> dict[str, object]:
    path, host, port, fd = (opts.get(k) for k in ("path", "host", "port", "fd"))
    server = opts.get_bool("server", False)
    wait = opts.get_bool("wait", True)
    if (path is not None) + (fd is not None) + (host is not None) > 1:
        raise OptionError("None or one of 'path', 'fd' or 'host' option required.")
    if host is not None and port is None:
        raise OptionError("chardev: socket: no port given")
    fields: dict[str, object] = {"server": server, "wait": wait}
    if path is not None:
        fields["path"] = path
    elif host is not None:
        assert port is not None
        if not port.isdigit():
            raise OptionError(
                f"address resolution failed for {host}:{port}: "
                "Servname not supported for ai_socktype"
            )
        fields["host"] = host
        fields["port"] = int(port)
    else:
        fields["fd"] = parse_fd(fd or "")
    if opts.get("reconnect") is not None and server:
        raise OptionError("'reconnect' option is incompatible with socket in server listen mode")
    if opts.get("wait") is not None and not server:
        raise OptionError("'wait' option is incompatible with socket in client connect mode")
    return fields


def parse_fd(text: str) -> int:
    """An ``fd=`` value: a number (QEMU's ``qemu_parse_fd``)."""
    if not text.isdigit():
        raise OptionError(f"Unable to parse FD number {text}")
    return int(text)


class CompatError(OptionError):
    """A legacy chardev string QEMU cannot parse: QEMU prints ``detail`` (if any) and
    then a second line of its own (``parse error: ...`` for monitors).  A plain
    :class:`OptionError` from :func:`parse_compat` is one line (QEMU finds those
    problems when it opens the device)."""

    def __init__(self, detail: str | None) -> None:
        super().__init__(detail or "")
        self.detail = detail


def parse_compat(label: str, text: str, option: str) -> Chardev:
    """``-qmp``/``-monitor``/``-serial TEXT`` as a chardev called ``label`` (QEMU's
    ``qemu_chr_parse_compat``); raises :class:`CompatError`."""
    fields: dict[str, object] = {"id": label, "option": option}
    if text in ("null", "stdio", "pty"):
        fields["backend"] = text
    elif text.startswith("file:"):
        fields.update(backend="file", path=text[5:])
    elif text.startswith(("unix:", "tcp:")):
        kind, _, rest = text.partition(":")
        address, comma, params = rest.partition(",")
        fields["backend"] = "socket"
        if kind == "unix":
            fields["path"] = address
        else:
            host, colon, port = address.rpartition(":")
            if not colon:
                raise CompatError(None)
            fields["host"] = host or "localhost"
            if not port.isdigit():
                raise OptionError(
                    f"address resolution failed for {host}:{port}: "
                    "Servname not supported for ai_socktype"
                )
            fields["port"] = int(port)
        opts = parse_noisily(_COMPAT_PARAMS, params) if comma else Opts(_COMPAT_PARAMS)
        for key, _ in opts.items:
            if key not in ("server", "wait", "nodelay", "ipv4", "ipv6", "telnet", "reconnect"):
                raise CompatError(f"Invalid parameter '{key}'")
        try:
            fields["server"] = opts.get_bool("server", False)
            fields["wait"] = opts.get_bool("wait", True)
        except OptionError as e:
            raise CompatError(str(e)) from None
        if kind == "unix" and not address:
            # QEMU reads an empty path as no path, and then as an fd
            raise OptionError("Unable to parse FD number ")
    else:
        driver = text.partition(":")[0].partition(",")[0]
        raise CompatError(f"'{driver}' is not a valid char driver")
    return Chardev.model_validate(fields)


def parse_mon(text: str, *, existing: Mapping[str, Opts], warn: Warn | None = None) -> Opts:
    """``-mon TEXT``: checked keys; the chardev and mode are checked once every chardev
    exists (see :func:`monitor_mode`)."""
    opts = parse_noisily(MON_OPTS, text, warn=warn, existing=existing)
    if opts.get("chardev") is None:
        raise OptionError("Parameter 'chardev' is missing")
    return opts


def monitor_mode(opts: Opts) -> tuple[str, bool]:
    """The ``mode`` and ``pretty`` of a ``-mon`` (QEMU checks them when it creates the
    monitor, after every chardev)."""
    mode = opts.get("mode", "readline")
    if mode not in ("readline", "control"):
        raise OptionError(f"Parameter 'mode' does not accept value '{mode}'")
    pretty = parse_bool("pretty", opts.get("pretty", "off") or "off")
    return mode, pretty
