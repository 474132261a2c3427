"""The ``qmpdl`` command line, spelled like QEMU's.

    qmpdl -qmp unix:qmp.sock,server=on,wait=off -smp 4 -accel sim,dirty-ring-size=4096

Options take one or two dashes, as in QEMU.  Errors are reported as QEMU reports them
(``qmpdl: -accel sim,dirty-ring-size=3: dirty-ring-size must be a power of two.``) and
exit with status 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qmpdl import __version__
from qmpdl.backend.base import RING_MAX_ENTRIES
from qmpdl.config import AccelConfig, ChardevSocket, MachineConfig, MonitorConfig
from qmpdl.dirtylimit.controllers import CONTROLLERS, DEFAULT_CONTROLLER
from qmpdl.profile import get_profile, profile_names
from qmpdl.qemuopts import OptionError, parse_bool, parse_opts, parse_uint, split_opts
from qmpdl.sizes import parse_size
from qmpdl.topology import SmpTopology, TopologyError, smp_topology
from qmpdl.workload import WorkloadError, WorkloadOption, parse_workload

PROG = "qmpdl"

#: Smallest ring KVM accepts: one host page of 16-byte entries.
RING_MIN_ENTRIES = 256


class UsageError(Exception):
    """A command-line error: ``option`` is the option as written, ``message`` QEMU's text."""

    def __init__(self, option: str | None, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message

    def __str__(self) -> str:
        return (
            f"{PROG}: {self.option}: {self.message}" if self.option else f"{PROG}: {self.message}"
        )


@dataclass
class _Builder:
    """Collects options in command-line order, then builds the MachineConfig."""

    qemu_version: str | None = None
    name: str | None = None
    smp: str | None = None
    memory: str | None = None
    accel: str | None = None
    start_paused: bool = False
    chardevs: list[ChardevSocket] = field(default_factory=list)
    monitors: list[MonitorConfig] = field(default_factory=list)
    mon_options: list[str] = field(default_factory=list)
    workloads: list[WorkloadOption] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    trace_file: str | None = None
    serial: str | None = None
    incoming: str | None = None
    compat_monitors: int = 0
    migration_globals: list[tuple[str, str]] = field(default_factory=list)
    dirtylimit_controller: str = DEFAULT_CONTROLLER
    metrics: tuple[str, int] | None = None


def _socket_from_qmp(option: str, value: str, chardev_id: str) -> ChardevSocket:
    """``-qmp unix:PATH[,server=on][,wait=off]`` / ``tcp:HOST:PORT[,...]``."""
    kind, colon, rest = value.partition(":")
    if not colon or kind not in ("unix", "tcp"):
        raise UsageError(f"{option} {value}", f"'{kind}' is not a valid char driver")
    parts = rest.split(",")
    opts = parse_opts(",".join(parts[1:]))
    fields: dict[str, object] = {"id": chardev_id}
    if kind == "unix":
        fields["path"] = parts[0]
    else:
        host, _, port = parts[0].rpartition(":")
        if not port.isdigit():
            raise UsageError(f"{option} {value}", f"port number missing in '{parts[0]}'")
        fields["host"] = host or "localhost"
        fields["port"] = int(port)
    return _socket(f"{option} {value}", fields, opts)


def _socket(where: str, fields: dict[str, object], opts: dict[str, str]) -> ChardevSocket:
    try:
        server = parse_bool("server", opts.pop("server", "off"))
        wait = parse_bool("wait", opts.pop("wait", "on"))
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    for key in opts:
        raise UsageError(where, f"Invalid parameter '{key}'")
    return ChardevSocket.model_validate({**fields, "server": server, "wait": wait})


def _chardev(value: str) -> ChardevSocket:
    opts = parse_opts(value, implied="backend")
    where = f"-chardev {value}"
    backend = opts.pop("backend", None)
    if backend != "socket":
        raise UsageError(
            where,
            f"'{backend}' is not a valid char driver" if backend else 'chardev: "backend" missing',
        )
    chardev_id = opts.pop("id", None)
    if not chardev_id:
        raise UsageError(where, "Parameter 'id' is missing")
    fields: dict[str, object] = {"id": chardev_id}
    if "path" in opts:
        fields["path"] = opts.pop("path")
    elif "port" in opts:
        port = opts.pop("port")
        if not port.isdigit():
            raise UsageError(where, f"Parameter 'port' expects a number, not '{port}'")
        fields["port"] = int(port)
        fields["host"] = opts.pop("host", "localhost")
    else:
        raise UsageError(where, "chardev: socket: no host given")
    opts.pop("ipv4", None)
    opts.pop("ipv6", None)
    return _socket(where, fields, opts)


def _handle_mon(b: _Builder, value: str) -> None:
    opts = parse_opts(value, implied="chardev")
    where = f"-mon {value}"
    mode = opts.pop("mode", "readline")
    if mode != "control":
        raise UsageError(where, "only QMP monitors (mode=control) are supported")
    chardev = opts.pop("chardev", None)
    if chardev is None:
        raise UsageError(where, "Parameter 'chardev' is missing")
    try:
        pretty = parse_bool("pretty", opts.pop("pretty", "off"))
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    for key in opts:
        raise UsageError(where, f"Invalid parameter '{key}'")
    b.mon_options.append(where)
    b.monitors.append(MonitorConfig(chardev=chardev, pretty=pretty))


def _handle_qmp(b: _Builder, value: str, pretty: bool) -> None:
    chardev_id = f"compat_monitor{b.compat_monitors}"
    b.compat_monitors += 1
    b.chardevs.append(_socket_from_qmp("-qmp-pretty" if pretty else "-qmp", value, chardev_id))
    b.mon_options.append(f"-qmp {value}")
    b.monitors.append(MonitorConfig(chardev=chardev_id, pretty=pretty))


def _smp(value: str) -> SmpTopology:
    where = f"-smp {value}"
    opts = parse_opts(value, implied="cpus")
    numbers: dict[str, int] = {}
    for key, text in opts.items():
        if key not in ("cpus", "maxcpus", "sockets", "dies", "cores", "threads"):
            raise UsageError(where, f"Invalid parameter '{key}'")
        try:
            numbers[key] = int(text, 10)
        except ValueError:
            raise UsageError(None, f"Parameter 'smp.{key}' expects integer") from None
        if numbers[key] < 0:
            raise UsageError(None, f"Parameter 'smp.{key}' expects integer")
    try:
        return smp_topology(
            cpus=numbers.get("cpus", 0),
            max_cpus=numbers.get("maxcpus", 0),
            sockets=numbers.get("sockets", 0),
            dies=numbers.get("dies", 0),
            cores=numbers.get("cores", 0),
            threads=numbers.get("threads", 0),
        )
    except TopologyError as e:
        raise UsageError(None, str(e)) from None


def _accel(value: str) -> AccelConfig:
    where = f"-accel {value}"
    opts = parse_opts(value, implied="accel")
    kind = opts.pop("accel", None)
    if kind not in ("sim", "kvm", "tcg"):
        raise UsageError(where, f"invalid accelerator {kind} (qmpdl has sim, kvm and tcg)")
    ring = 0
    if "dirty-ring-size" in opts and kind != "tcg":
        try:
            ring = parse_uint("dirty-ring-size", opts.pop("dirty-ring-size"), 32)
        except OptionError as e:
            raise UsageError(where, str(e)) from None
        if ring & (ring - 1):
            raise UsageError(where, "dirty-ring-size must be a power of two.")
    for key in opts:
        raise UsageError(where, f"Property '{kind}-accel.{key}' not found")
    if ring > RING_MAX_ENTRIES:
        raise UsageError(
            where,
            f"KVM dirty ring size {ring} too big (maximum is {RING_MAX_ENTRIES}).  "
            f"Please use a smaller value.\n{PROG}: {where}: failed to initialize kvm: "
            "Invalid argument",
        )
    if ring and ring < RING_MIN_ENTRIES:
        raise UsageError(
            where,
            "Enabling of KVM dirty ring failed: Invalid argument. Suggested minimum value is "
            f"1024.\n{PROG}: {where}: failed to initialize kvm: Invalid argument",
        )
    return AccelConfig(kind=kind, dirty_ring_size=ring)


Handler = Callable[[_Builder, str], None]


@dataclass(frozen=True)
class _Option:
    name: str
    arg: str | None
    help: str
    handler: Handler


def _set(attr: str) -> Handler:
    def handler(b: _Builder, value: str) -> None:
        setattr(b, attr, value)

    return handler


def _ignored(b: _Builder, value: str) -> None:
    """Accepted for compatibility with QEMU command lines; no effect."""


def _workload(b: _Builder, value: str) -> None:
    try:
        b.workloads.append(parse_workload(value))
    except WorkloadError as e:
        raise UsageError(f"--workload {value}", str(e)) from None


def _chardev_opt(b: _Builder, value: str) -> None:
    chardev = _chardev(value)
    if any(c.id == chardev.id for c in b.chardevs):
        raise UsageError(
            f"-chardev {value}",
            f"attempt to add duplicate property '{chardev.id}' to object (type 'container')",
        )
    b.chardevs.append(chardev)


def _serial(b: _Builder, value: str) -> None:
    if value in ("none", "null"):
        b.serial = None
    elif value.startswith("file:") and len(value) > 5:
        b.serial = value[5:]
    else:
        raise UsageError(f"-serial {value}", "only file:PATH and none are supported")


def _global(b: _Builder, value: str) -> None:
    """``-global DRIVER.PROP=VALUE`` or ``-global driver=D,property=P,value=V`` (QEMU's
    ``qemu_global_option``); only the ``migration`` driver is kept."""
    where = f"-global {value}"
    dot, eq = value.find("."), value.find("=")
    if 0 < dot < eq and dot <= 63 and eq - dot - 1 <= 63:
        driver, prop, setting = value[:dot], value[dot + 1 : eq], value[eq + 1 :]
    else:
        fields: dict[str, str] = {}
        for part in split_opts(value):
            key, has_value, setting = part.partition("=")
            if not has_value:
                raise UsageError(
                    where,
                    f"warning: short-form boolean option '{key}' deprecated\n"
                    f"Please use {key}=on instead\n"
                    f"{PROG}: {where}: Invalid parameter '{key}'",
                )
            if key not in ("driver", "property", "value"):
                raise UsageError(where, f"Invalid parameter '{key}'")
            fields[key] = setting
        driver = fields.get("driver", "")
        prop = fields.get("property", "")
        setting = fields.get("value", "")
    if driver == "migration":
        b.migration_globals.append((prop, setting))


def _dirtylimit_controller(b: _Builder, value: str) -> None:
    if value not in CONTROLLERS:
        raise UsageError(
            f"--dirtylimit-controller {value}",
            f"unknown controller '{value}' (choose from {', '.join(CONTROLLERS)})",
        )
    b.dirtylimit_controller = value


def _metrics(b: _Builder, value: str) -> None:
    """``--metrics HOST:PORT`` (``[::1]:PORT`` for IPv6; an empty host is 127.0.0.1)."""
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--metrics {value}", "expected HOST:PORT, e.g. 127.0.0.1:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    b.metrics = (host or "127.0.0.1", int(port))


def _trace(b: _Builder, value: str) -> None:
    opts = parse_opts(value, implied="enable")
    if "file" in opts:
        b.trace_file = opts["file"]
    if "enable" in opts:
        b.trace.append(opts["enable"])


OPTIONS: list[_Option] = [
    _Option(
        "qmp",
        "dev",
        "QMP monitor on a socket: unix:PATH[,server=on][,wait=off] or tcp:HOST:PORT[,...]",
        lambda b, v: _handle_qmp(b, v, False),
    ),
    _Option(
        "qmp-pretty",
        "dev",
        "like -qmp, with pretty-printed JSON",
        lambda b, v: _handle_qmp(b, v, True),
    ),
    _Option(
        "chardev",
        "socket,id=ID,...",
        "a socket chardev: path=PATH | host=H,port=P [,server=on][,wait=off]",
        _chardev_opt,
    ),
    _Option(
        "mon", "[chardev=]ID,mode=control[,pretty=on]", "a QMP monitor on chardev ID", _handle_mon
    ),
    _Option("smp", "[cpus=]N[,maxcpus=M]", "present and possible vCPUs", _set("smp")),
    _Option("m", "[size=]SIZE", "guest RAM (default 128M; plain numbers are MiB)", _set("memory")),
    _Option(
        "accel",
        "sim|kvm[,dirty-ring-size=N] | tcg",
        "accelerator and dirty ring entries per vCPU (tcg: simulated vCPUs without KVM)",
        _set("accel"),
    ),
    _Option(
        "S",
        None,
        "start with the vCPUs paused (run state prelaunch)",
        lambda b, v: setattr(b, "start_paused", True),
    ),
    _Option("name", "NAME[,debug-threads=on]", "the VM's name", _set("name")),
    _Option(
        "workload",
        "CPUS:KIND[,key=value...]",
        "what vCPUs run: CPUS all|N|N-M; KIND write[,rate=MiB/s][,wss=SIZE] | read[,rate=] | idle",
        _workload,
    ),
    _Option(
        "qemu-version",
        "VERSION",
        "the QEMU version to answer as (" + ", ".join(profile_names()) + ")",
        _set("qemu_version"),
    ),
    _Option(
        "incoming",
        "tcp:HOST:PORT|unix:PATH|defer",
        "wait for an incoming migration (defer: until migrate-incoming)",
        _set("incoming"),
    ),
    _Option(
        "global",
        "DRIVER.PROP=VALUE",
        "set a property of QEMU's migration object (other drivers are ignored)",
        _global,
    ),
    _Option(
        "trace",
        "[enable=]PATTERN[,file=FILE]",
        "enable trace events (QEMU names, e.g. dirtylimit_*)",
        _trace,
    ),
    _Option("D", "FILE", "write trace output to FILE", _set("trace_file")),
    _Option(
        "dirtylimit-controller",
        "NAME",
        "the dirty limit's throttle controller: "
        + "; ".join(f"{name}: {factory.summary}" for name, factory in CONTROLLERS.items()),
        _dirtylimit_controller,
    ),
    _Option(
        "metrics",
        "HOST:PORT",
        "serve Prometheus metrics of the throttle, QMP and migration at http://HOST:PORT/",
        _metrics,
    ),
    _Option(
        "serial",
        "file:PATH|none",
        "with -accel kvm: the guests' pass characters ('#' per pass) go to PATH",
        _serial,
    ),
]

#: Options of QEMU command lines that qmpdl accepts and ignores (QEMUMachine, libvirt, scripts).
IGNORED_WITH_ARG = [
    "display",
    "vga",
    "machine",
    "M",
    "cpu",
    "msg",
    "monitor",
    "parallel",
    "drive",
    "boot",
    "L",
    "pidfile",
    "sandbox",
    "device",
    "netdev",
    "net",
]
IGNORED_FLAGS = [
    "nographic",
    "nodefaults",
    "no-user-config",
    "no-shutdown",
    "no-reboot",
    "enable-kvm",
    "daemonize",
    "snapshot",
]


#: Options ``--help`` shows with two dashes (qmpdl's own, not QEMU's).
_DOUBLE_DASH = ("workload", "qemu-version", "dirtylimit-controller", "metrics")


def usage() -> str:
    lines = [
        f"usage: {PROG} [options]",
        "",
        "A QMP server that answers as QEMU does for the vCPU dirty page rate limit.",
        "",
    ]
    for opt in OPTIONS:
        dash = "--" if len(opt.name) > 3 and opt.name in _DOUBLE_DASH else "-"
        head = f"{dash}{opt.name}" + (f" {opt.arg}" if opt.arg else "")
        lines.append(f"  {head}")
        lines.append(f"        {opt.help}")
    lines += [
        "  -h, --help          this text",
        "  -version            print the version",
        "",
        "Accepted and ignored, for QEMU command lines: "
        + " ".join("-" + o for o in IGNORED_FLAGS + IGNORED_WITH_ARG),
        "",
        "Example:",
        f"  {PROG} -qmp unix:qmp.sock,server=on,wait=off -smp 4 -accel sim,dirty-ring-size=4096",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> MachineConfig:
    """Build the configuration from QEMU-style arguments (raises UsageError)."""
    table = {o.name: o for o in OPTIONS}
    b = _Builder()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            raise UsageError(None, f"{arg}: invalid option")
        name = arg.lstrip("-")
        inline = None
        if "=" in name and name.split("=", 1)[0] in table:
            name, inline = name.split("=", 1)
        if name in table:
            opt = table[name]
            if opt.arg is None:
                opt.handler(b, "")
                i += 1
                continue
            if inline is None:
                if i + 1 >= len(argv):
                    raise UsageError(arg, "requires an argument")
                inline = argv[i + 1]
                i += 1
            opt.handler(b, inline)
        elif name in IGNORED_FLAGS:
            if name == "enable-kvm":
                b.accel = b.accel or "kvm"
        elif name in IGNORED_WITH_ARG:
            if i + 1 >= len(argv):
                raise UsageError(arg, "requires an argument")
            i += 1
        else:
            raise UsageError(arg, "invalid option")
        i += 1
    return _build(b)


def _build(b: _Builder) -> MachineConfig:
    if b.qemu_version is not None:
        try:
            get_profile(b.qemu_version)
        except ValueError as e:
            raise UsageError(f"--qemu-version {b.qemu_version}", str(e)) from None
    topology = _smp(b.smp) if b.smp is not None else smp_topology()
    ram = 128 << 20
    if b.memory is not None:
        opts = parse_opts(b.memory, implied="size")
        try:
            ram = parse_size(opts.get("size", ""), default_suffix="M")
        except ValueError:
            raise UsageError(
                f"-m {b.memory}", "Parameter 'size' expects a non-negative number below 2^64"
            ) from None
        if ram < 1 << 20:
            raise UsageError(f"-m {b.memory}", "ram size too small")
    accel = _accel(b.accel) if b.accel is not None else AccelConfig()
    if b.migration_globals:
        _check_migration_globals(b, accel)
    ids = {c.id for c in b.chardevs}
    for monitor, where in zip(b.monitors, b.mon_options, strict=True):
        if monitor.chardev not in ids:
            raise UsageError(where, f'chardev "{monitor.chardev}" not found')
    used = [m.chardev for m in b.monitors]
    for chardev_id in used:
        if used.count(chardev_id) > 1:
            raise UsageError(None, f"Chardev '{chardev_id}' is busy")
    config = MachineConfig(
        qemu_version=b.qemu_version,
        name=b.name,
        cpus=topology.cpus,
        max_cpus=topology.max_cpus,
        sockets=topology.sockets,
        dies=topology.dies,
        cores=topology.cores,
        threads=topology.threads,
        ram_size=ram,
        accel=accel,
        workloads=b.workloads,
        start_paused=b.start_paused,
        chardevs=b.chardevs,
        monitors=b.monitors,
        trace_patterns=b.trace,
        trace_file=b.trace_file,
        serial_file=b.serial,
        incoming=b.incoming,
        migration_globals=b.migration_globals,
        dirtylimit_controller=b.dirtylimit_controller,
        metrics=b.metrics,
    )
    return config


def _check_migration_globals(b: _Builder, accel: AccelConfig) -> None:
    """QEMU applies ``-global migration.*`` when it creates the migration object and
    checks the result; its errors carry no option location."""
    from qmpdl.migration.params import GlobalPropertyError, MigrationConfig

    try:
        config = MigrationConfig(
            get_profile(b.qemu_version),
            kvm_dirty_ring=accel.kind != "tcg" and accel.dirty_ring_size > 0,
            global_properties=b.migration_globals,
        )
    except GlobalPropertyError as e:
        raise UsageError(None, str(e)) from None
    for warning in config.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "-help", "--help") for a in args):
        sys.stdout.write(usage())
        return 0
    if any(a in ("-version", "--version") for a in args):
        sys.stdout.write(f"{PROG} {__version__}\n")
        return 0
    try:
        config = parse_args(args)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 1
    from qmpdl.server.app import ConfigError, serve

    try:
        return asyncio.run(serve(config))
    except ConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
