"""The ``qmpdl`` command line, spelled like QEMU's.

    qmpdl -qmp unix:qmp.sock,server=on,wait=off -smp 4 -accel sim,dirty-ring-size=4096

Options take one or two dashes, as in QEMU.  Errors are reported as QEMU reports them
(``qmpdl: -accel sim,dirty-ring-size=3: dirty-ring-size must be a power of two.``) and
exit with status 1.  Every option libvirt and QEMU's Python harness pass is accepted:
with its meaning where qmpdl has one (the monitors, chardevs, vCPUs, RAM, the process
model), checked and otherwise ignored where it has none.

Under a harness that builds the command line itself, qmpdl's own options can come from
the environment: ``QMPDL_OPTIONS`` (shell words appended to the command line) and
``QMPDL_BACKEND`` (``sim`` or ``kvm``: which vCPUs serve ``-accel kvm``).
"""

from __future__ import annotations

import gc
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, cast

from qmpdl import __version__, report
from qmpdl.backend.base import RING_MAX_ENTRIES
from qmpdl.backend.registry import ACCELERATORS
from qmpdl.cmdline import chardev as chardevs
from qmpdl.cmdline import machine as machines
from qmpdl.cmdline import objects
from qmpdl.config import AccelConfig, Chardev, MachineConfig, MonitorConfig
from qmpdl.errors import QmpdlError
from qmpdl.qemuopts import (
    SIZE_HINT,
    OptionError,
    Opts,
    OptsList,
    parse_bool,
    parse_noisily,
    parse_opts,
    parse_uint,
    split_opts,
)
from qmpdl.sizes import parse_size
from qmpdl.topology import SmpTopology, TopologyError, smp_topology
from qmpdl.workload import WorkloadError, WorkloadOption, parse_workload

PROG = report.PROG

#: Smallest ring KVM accepts: one host page of 16-byte entries.
RING_MIN_ENTRIES = 256

#: Environment variables a harness that builds the command line can still set.
ENV_OPTIONS = "QMPDL_OPTIONS"
ENV_BACKEND = "QMPDL_BACKEND"


class UsageError(QmpdlError):
    """A command-line error: ``option`` is the option as written, ``message`` QEMU's text."""

    def __init__(self, option: str | None, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message

    def __str__(self) -> str:
        return (
            f"{PROG}: {self.option}: {self.message}" if self.option else f"{PROG}: {self.message}"
        )

    def report(self) -> None:
        report.error(self.message, self.option)


def _warn(where: str) -> Callable[[str], None]:
    return lambda text: report.warning(text, where)


# --- option groups with QEMU's key tables -------------------------------------------------

NAME_OPTS = OptsList(
    "name", implied="guest", desc={"guest": "string", "process": "string", "debug-threads": "bool"}
)
MSG_OPTS = OptsList("msg", desc={"timestamp": "bool", "guest-name": "bool"})
OVERCOMMIT_OPTS = OptsList("overcommit", desc={"mem-lock": "bool", "cpu-pm": "bool"})
RTC_OPTS = OptsList("rtc", desc={"base": "string", "clock": "string", "driftfix": "string"})
SANDBOX_OPTS = OptsList(
    "sandbox",
    implied="enable",
    desc={
        "enable": "bool",
        "obsolete": "string",
        "elevateprivileges": "string",
        "spawn": "string",
        "resourcecontrol": "string",
    },
)
#: ``-boot``: a machine property, checked when the machine is made (QEMU's texts name
#: the keys ``boot.KEY`` and carry no location).
BOOT_KEYS = {
    "order": "string",
    "once": "string",
    "menu": "bool",
    "splash": "string",
    "splash-time": "number",
    "reboot-timeout": "number",
    "strict": "bool",
}
DISPLAY_TYPES = ("none", "gtk", "sdl", "egl-headless", "curses", "spice-app", "dbus", "vnc")


class _Builder:
    """Collects options in command-line order, then builds the MachineConfig (the
    class attributes are the defaults; each builder has its own collections)."""

    qemu_version: str | None = None
    name: str | None = None
    smp: str | None = None
    memory: str | None = None
    accel: str | None = None
    machine_accel: str | None = None
    start_paused: bool = False
    monitor_index: int = 0
    trace_file: str | None = None
    incoming: str | None = None
    dirtylimit_controller: str | None = None
    uuid: str | None = None
    machine_type: str | None = None
    cpu_model: str | None = None
    #: ``-cpu`` as written (checked once the whole command line is read)
    cpu: str | None = None
    no_shutdown: bool = False
    no_acpi: bool = False
    debug_threads: bool = False
    msg_timestamp: bool = False
    daemonize: bool = False
    pidfile: str | None = None
    backend: str | None = None
    #: ``--metrics HOST:PORT``
    metrics: tuple[str, int] | None = None
    seed: int | None = None
    scenario: str | None = None

    def __init__(self) -> None:
        self.chardevs: list[Chardev] = []
        self.chardev_opts: dict[str, Opts] = {}
        #: monitors: the config and the option that made it
        self.monitors: list[tuple[MonitorConfig, str]] = []
        self.mon_opts: dict[str, Opts] = {}
        #: -serial values in order ("chardev:ID", or a legacy string)
        self.serials: list[str] = []
        self.workloads: list[WorkloadOption] = []
        self.trace: list[str] = []
        self.migration_globals: list[tuple[str, str]] = []
        self.machine_props: dict[str, str] = {}
        self.objects: list[dict[str, Any]] = []
        self.object_opts: dict[str, Opts] = {}
        self.devices: list[dict[str, Any]] = []
        self.device_opts: dict[str, Opts] = {}
        self.netdevs: list[dict[str, Any]] = []
        self.netdev_opts: dict[str, Opts] = {}
        self.blockdevs: list[dict[str, Any]] = []
        self.drives: list[dict[str, Any]] = []
        self.boot: dict[str, str] = {}


# --- monitors and chardevs ----------------------------------------------------------------


def _monitor_option(b: _Builder, option: str, value: str, mode: str, pretty: bool) -> None:
    """``-qmp``, ``-qmp-pretty``, ``-monitor``: QEMU's ``monitor_parse``."""
    where = f"{option} {value}"
    if value.startswith("chardev:"):
        label = value[len("chardev:") :]
    else:
        label = f"compat_monitor{b.monitor_index}"
        _add_compat_chardev(b, label, value, where, f"parse error: {value}")
    if label in b.mon_opts:
        raise UsageError(where, f"Duplicate ID '{label}' for mon")
    b.mon_opts[label] = Opts(chardevs.MON_OPTS, id=label)
    monitor = MonitorConfig(chardev=label, mode=_mode(mode), pretty=pretty, id=label)
    b.monitors.append((monitor, where))
    b.monitor_index += 1


def _mode(mode: str) -> Literal["control", "readline"]:
    assert mode in ("control", "readline")
    return "control" if mode == "control" else "readline"


def _add_chardev(b: _Builder, chardev: Chardev, where: str) -> None:
    if chardev.id in b.chardev_opts:
        raise UsageError(where, f"Duplicate ID '{chardev.id}' for chardev")
    b.chardev_opts[chardev.id] = Opts(chardevs.CHARDEV_OPTS, id=chardev.id)
    b.chardevs.append(chardev)


def _add_compat_chardev(
    b: _Builder,
    label: str,
    value: str,
    where: str,
    failure: str,
    *,
    report_option_error: bool = False,
) -> None:
    """Add the chardev ``label`` that a legacy spec (``-monitor stdio``, ``-serial pty``)
    stands for, or raise ``failure``.  An option error is reported before ``failure``
    (``-serial``) or is the error itself (``-monitor``)."""
    try:
        chardev = chardevs.parse_compat(label, value, where)
    except chardevs.CompatError as e:
        if e.detail:
            report.error(e.detail, where)
        raise UsageError(where, failure) from None
    except OptionError as e:
        if not report_option_error:
            raise UsageError(where, str(e)) from None
        report.error(str(e), where)
        raise UsageError(where, failure) from None
    _add_chardev(b, chardev, where)


def _chardev(b: _Builder, value: str) -> None:
    where = f"-chardev {value}"
    try:
        opts, chardev = chardevs.parse_chardev(value, existing=b.chardev_opts, warn=_warn(where))
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    assert opts.id is not None
    b.chardev_opts[opts.id] = opts
    b.chardevs.append(chardev)


def _mon(b: _Builder, value: str) -> None:
    where = f"-mon {value}"
    try:
        opts = chardevs.parse_mon(value, existing=b.mon_opts, warn=_warn(where))
        mode, pretty = chardevs.monitor_mode(opts)
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    if opts.id is not None:
        b.mon_opts[opts.id] = opts
    chardev = opts.get("chardev")
    assert chardev is not None
    monitor = MonitorConfig(chardev=chardev, mode=_mode(mode), pretty=pretty, id=opts.id)
    b.monitors.append((monitor, where))


def _resolve_chardevs(b: _Builder) -> tuple[list[MonitorConfig], list[str]]:
    """Monitors and serial ports get their chardevs, as QEMU creates them after every
    ``-chardev``: the monitors first, then the serial ports (``serialN`` chardevs)."""
    ids = {c.id for c in b.chardevs}
    in_use: set[str] = set()
    monitors: list[MonitorConfig] = []
    for monitor, where in b.monitors:
        if monitor.chardev not in ids:
            raise UsageError(where, f'chardev "{monitor.chardev}" not found')
        if monitor.chardev in in_use:
            raise UsageError(where, f"Device '{monitor.chardev}' is in use")
        in_use.add(monitor.chardev)
        monitors.append(monitor)
    serials: list[str] = []
    for value in b.serials:
        where = f"-serial {value}"
        if value == "none":
            continue
        failure = f"could not connect serial device to character backend '{value}'"
        if value.startswith("chardev:"):
            label = value[len("chardev:") :]
            if label not in ids:
                raise UsageError(where, failure)
        else:
            label = f"serial{len(serials)}"
            _add_compat_chardev(b, label, value, where, failure, report_option_error=True)
            ids.add(label)
        if label in in_use:
            raise UsageError(where, f"Device '{label}' is in use")
        in_use.add(label)
        serials.append(label)
    for device in b.devices:
        if device.get("driver") == "isa-serial" and isinstance(device.get("chardev"), str):
            label = device["chardev"]
            if label not in ids:
                raise UsageError(None, f"Property 'isa-serial.chardev' can't find value '{label}'")
            if label in in_use:
                raise UsageError(
                    None, f"Property 'isa-serial.chardev' can't take value '{label}', it's in use"
                )
            in_use.add(label)
            serials.append(label)
    stdio = [c for c in b.chardevs if c.backend == "stdio"]
    if len(stdio) > 1:
        raise UsageError(stdio[1].option, "cannot use stdio by multiple character devices")
    if b.daemonize and stdio:
        raise UsageError(stdio[0].option, "cannot use stdio with -daemonize")
    return monitors, serials


# --- the machine --------------------------------------------------------------------------


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
    if kind is None or kind not in ACCELERATORS:
        *others, last = ACCELERATORS.names()
        raise UsageError(
            where, f"invalid accelerator {kind} (qmpdl has {', '.join(others)} and {last})"
        )
    ring = 0
    clock = opts.pop("clock", "host") if ACCELERATORS[kind].stand_in is None else "host"
    if clock not in ("host", "virtual"):
        raise UsageError(where, f"clock={clock}: choose host or virtual")
    if "dirty-ring-size" in opts and ACCELERATORS[kind].dirty_ring:
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
    return AccelConfig(
        kind=kind, dirty_ring_size=ring, clock=cast(Literal["host", "virtual"], clock)
    )


def _machine_accel(value: str) -> str:
    """``-machine ...,accel=kvm:tcg``: the first accelerator of the list qmpdl has."""
    for name in value.split(":"):
        if name in ACCELERATORS:
            return name
    return value.split(":", maxsplit=1)[0]


def _memory(b: _Builder) -> int:
    ram = 128 << 20
    if b.memory is not None:
        opts = parse_opts(b.memory, implied="size")
        try:
            ram = parse_size(opts.get("size", ""), default_suffix="M")
        except ValueError:
            raise UsageError(
                f"-m {b.memory}",
                f"Parameter 'size' expects a non-negative number below 2^64\n{SIZE_HINT}",
            ) from None
        if ram == 0:
            ram = 128 << 20
        elif ram < 1 << 20:
            ram = 1 << 20
    backend = b.machine_props.get("memory-backend")
    if backend is not None:
        try:
            size = objects.memory_backend_size(b.objects, backend)
        except OptionError as e:
            raise UsageError(None, str(e)) from None
        if b.memory is not None and size != ram:
            raise UsageError(
                None, "Machine memory size does not match the size of the memory backend"
            )
        ram = size
    return ram


# --- option handlers ----------------------------------------------------------------------

Handler = Callable[[_Builder, str], None]


class _Option(NamedTuple):
    """One option: its name, its argument's synopsis (None: a flag), its help, what it
    does, and whether --help shows it (not the ones harnesses pass that mean nothing
    to qmpdl)."""

    name: str
    arg: str | None
    help: str
    handler: Handler
    listed: bool = True


def _set(attr: str) -> Handler:
    def handler(b: _Builder, value: str) -> None:
        setattr(b, attr, value)

    return handler


def _checked(
    lst: OptsList, option: str, then: Callable[[_Builder, Opts], None] | None = None
) -> Handler:
    """An option that is QemuOpts with a key table: parsed and checked, ``then`` (if
    any) takes what it means."""

    def handler(b: _Builder, value: str) -> None:
        where = f"-{option} {value}"
        try:
            opts = parse_noisily(lst, value, warn=_warn(where))
            if then is not None:
                then(b, opts)
        except OptionError as e:
            raise UsageError(where, str(e)) from None

    return handler


def _name(b: _Builder, opts: Opts) -> None:
    b.name = opts.get("guest", b.name)
    b.debug_threads = opts.get_bool("debug-threads", b.debug_threads)
    report.configure(guest_name=b.name)


def _msg(b: _Builder, opts: Opts) -> None:
    b.msg_timestamp = opts.get_bool("timestamp", False)
    report.configure(timestamp=b.msg_timestamp, with_guest=opts.get_bool("guest-name", False))


def _sandbox(b: _Builder, opts: Opts) -> None:
    choices = {
        "obsolete": ("allow", "deny"),
        "elevateprivileges": ("allow", "deny", "children"),
        "spawn": ("allow", "deny"),
        "resourcecontrol": ("allow", "deny"),
    }
    enable = opts.get_bool("enable", False)
    for key, allowed in choices.items():
        value = opts.get(key)
        if enable and value is not None and value not in allowed:
            raise OptionError(f"invalid argument for {key}")


def _rtc(b: _Builder, opts: Opts) -> None:
    base = opts.get("base")
    if base is not None and base not in ("utc", "localtime"):
        import time

        for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
            try:
                time.strptime(base, fmt)
                break
            except ValueError:
                continue
        else:
            raise UsageError(
                None,
                "invalid datetime format\nvalid formats: '2006-06-17T16:01:21' or '2006-06-17'",
            )


def _uuid(b: _Builder, value: str) -> None:
    import uuid as uuidlib

    try:
        if len(value) != 36 or value.count("-") != 4:
            raise ValueError(value)
        b.uuid = str(uuidlib.UUID(value))
    except ValueError:
        raise UsageError(f"-uuid {value}", "failed to parse UUID string: wrong format") from None


def _machine(b: _Builder, value: str) -> None:
    try:
        props = machines.parse_machine(value)
    except OptionError as e:
        raise UsageError(f"-machine {value}", str(e)) from None
    if "type" in props:
        b.machine_type = props.pop("type")
    if "accel" in props:
        b.machine_accel = props["accel"]
    b.machine_props.update(props)


def _cpu(b: _Builder, value: str) -> None:
    b.cpu_model = value.split(",", 1)[0]
    b.cpu = value


def _object(b: _Builder, value: str) -> None:
    where = f"-object {value}"
    try:
        obj, opts = objects.parse_object(value, existing=b.object_opts)
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    if opts is not None and opts.id is not None:
        b.object_opts[opts.id] = opts
    b.objects.append(obj)


def _device(b: _Builder, value: str) -> None:
    try:
        device = objects.parse_device(value, existing=b.device_opts)
    except OptionError as e:
        raise UsageError(f"-device {value}", str(e)) from None
    b.devices.append(device)


def _netdev(b: _Builder, value: str) -> None:
    where = f"-netdev {value}"
    try:
        netdev = objects.parse_netdev(value, existing=b.netdev_opts)
    except OptionError as e:
        raise UsageError(where, str(e)) from None
    ident = netdev.get("id")
    if isinstance(ident, str):
        if ident in b.netdev_opts:
            raise UsageError(where, f"Duplicate ID '{ident}' for netdev")
        b.netdev_opts[ident] = Opts(objects.NETDEV_OPTS, id=ident)
    b.netdevs.append(netdev)


def _blockdev(b: _Builder, value: str) -> None:
    try:
        b.blockdevs.append(objects.parse_blockdev(value))
    except OptionError as e:
        raise UsageError(f"-blockdev {value}", str(e)) from None


def _drive(b: _Builder, value: str) -> None:
    try:
        b.drives.append(objects.parse_drive(value))
    except OptionError as e:
        raise UsageError(f"-drive {value}", str(e)) from None


def _audiodev(b: _Builder, value: str) -> None:
    try:
        objects.parse_audiodev(value)
    except OptionError as e:
        raise UsageError(f"-audiodev {value}", str(e)) from None


def _boot(b: _Builder, value: str) -> None:
    for i, part in enumerate(split_opts(value)):
        key, eq, setting = part.partition("=")
        if not eq:
            key, setting = ("order", part) if i == 0 else (part, "on")
        b.boot[key] = setting


def _display(b: _Builder, value: str) -> None:
    where = f"-display {value}"
    parts = split_opts(value)
    kind = parts[0].partition("=")[2] if parts[0].startswith("type=") else parts[0]
    if kind not in DISPLAY_TYPES:
        raise UsageError(where, f"Parameter 'type' does not accept value '{kind}'")
    if kind == "none":
        for part in parts[1:]:
            raise UsageError(where, f"Parameter '{part.partition('=')[0]}' is unexpected")


def _workload(b: _Builder, value: str) -> None:
    try:
        b.workloads.append(parse_workload(value))
    except WorkloadError as e:
        raise UsageError(f"--workload {value}", str(e)) from None


def _serial(b: _Builder, value: str) -> None:
    b.serials.append(value)


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
    from qmpdl.dirtylimit.controllers import CONTROLLERS

    if value not in CONTROLLERS:
        raise UsageError(
            f"--dirtylimit-controller {value}",
            f"unknown controller '{value}' (choose from {', '.join(CONTROLLERS)})",
        )
    b.dirtylimit_controller = value


def _seed(b: _Builder, value: str) -> None:
    try:
        b.seed = int(value, 0)
    except ValueError:
        raise UsageError(f"--seed {value}", "expected an integer") from None


def _backend(b: _Builder, value: str) -> None:
    choices = ACCELERATORS.serving("kvm")
    if value not in choices:
        raise UsageError(
            f"--backend {value}", f"unknown backend '{value}' (choose from {', '.join(choices)})"
        )
    b.backend = value


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


def _flag(attr: str) -> Handler:
    def handler(b: _Builder, value: str) -> None:
        setattr(b, attr, True)

    return handler


def _ignored(b: _Builder, value: str) -> None:
    """Accepted for compatibility with QEMU command lines; no effect."""


OPTIONS: list[_Option] = [
    _Option(
        "qmp",
        "dev",
        "QMP monitor: unix:PATH[,server=on][,wait=off] | tcp:HOST:PORT[,...] | stdio | chardev:ID",
        lambda b, v: _monitor_option(b, "-qmp", v, "control", False),
    ),
    _Option(
        "qmp-pretty",
        "dev",
        "like -qmp, with pretty-printed JSON",
        lambda b, v: _monitor_option(b, "-qmp-pretty", v, "control", True),
    ),
    _Option(
        "monitor",
        "dev",
        "the human monitor (HMP, QEMU's line editor and prompt) on a chardev like -qmp's",
        lambda b, v: (
            None if v.startswith("none") else _monitor_option(b, "-monitor", v, "readline", False)
        ),
    ),
    _Option(
        "chardev",
        "BACKEND,id=ID,...",
        "a character device: socket (path=P | host=H,port=N | fd=N, [server=on][,wait=off]),"
        " stdio, pty, null, file,path=P",
        _chardev,
    ),
    _Option(
        "mon",
        "[chardev=]ID[,mode=control|readline][,pretty=on][,id=ID]",
        "a monitor on chardev ID",
        _mon,
    ),
    _Option(
        "serial",
        "dev",
        "a serial port (COM1 first): chardev:ID, pty, file:PATH, null, unix:..., tcp:..., "
        "stdio, none; -accel kvm guests print '#' per pass on the first",
        _serial,
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
        "machine",
        "TYPE[,prop=value...]",
        "the board (pc, q35, none, ...); memory-backend=ID takes the RAM size from that "
        "-object; accel=kvm:tcg as -accel",
        _machine,
    ),
    _Option("M", "TYPE[,...]", "the same as -machine", _machine, listed=False),
    _Option("cpu", "MODEL[,...]", "the CPU model QMP reports (qemu64 by default)", _cpu),
    _Option(
        "S",
        None,
        "start with the vCPUs paused (run state prelaunch)",
        _flag("start_paused"),
    ),
    _Option(
        "name",
        "[guest=]NAME[,debug-threads=on]",
        "the VM's name; debug-threads names threads as QEMU does",
        _checked(NAME_OPTS, "name", _name),
    ),
    _Option("uuid", "UUID", "the VM's UUID (query-uuid)", _uuid),
    _Option(
        "no-shutdown",
        None,
        "on a guest shutdown stop the vCPUs instead of exiting",
        _flag("no_shutdown"),
    ),
    _Option(
        "daemonize",
        None,
        "detach once the monitors listen; the launching process exits 0 then (1 on errors)",
        _flag("daemonize"),
    ),
    _Option("pidfile", "FILE", "write and lock the process id in FILE", _set("pidfile")),
    _Option(
        "msg",
        "timestamp=on|off[,guest-name=on|off]",
        "prefix stderr messages with QEMU's UTC timestamp (and the guest's name)",
        _checked(MSG_OPTS, "msg", _msg),
    ),
    _Option(
        "object",
        "JSON | TYPE,id=ID,...",
        "a QOM object (memory-backend-ram's size is the RAM with -machine memory-backend=ID)",
        _object,
    ),
    _Option(
        "device", "JSON | DRIVER,...", "a device (isa-serial,chardev=ID is a serial port)", _device
    ),
    _Option(
        "netdev", "JSON | TYPE,id=ID,...", "a network backend (checked, not emulated)", _netdev
    ),
    _Option("blockdev", "JSON | driver=...", "a block node (checked, not emulated)", _blockdev),
    _Option("drive", "...", "a drive (checked, not emulated)", _drive),
    _Option("audiodev", "JSON | DRIVER,id=ID", "an audio backend (checked)", _audiodev),
    _Option(
        "workload",
        "CPUS:KIND[,key=value...]",
        "what vCPUs run: CPUS all|N|N-M; KIND write[,rate=MiB/s][,wss=SIZE] | read[,rate=] | idle",
        _workload,
    ),
    _Option(
        "backend",
        "sim|kvm",
        f"which vCPUs serve -accel kvm (default kvm: real ones in /dev/kvm; "
        f"${ENV_BACKEND} does the same)",
        _backend,
    ),
    _Option(
        "qemu-version",
        "VERSION",
        "the QEMU version to answer as (7.2, 8.1, 8.2, 9.0, 10.1)",
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
        "the dirty limit's throttle controller: qemu (QEMU's, the default) or target",
        _dirtylimit_controller,
    ),
    _Option(
        "seed", "N", "seed every random choice of the run (with clock=virtual: reproducible)", _seed
    ),
    _Option(
        "scenario",
        "FILE",
        "workload phases, machine events and faults over time (TOML or YAML)",
        _set("scenario"),
    ),
    _Option("enable-kvm", None, "the same as -accel kvm", lambda b, v: None, listed=False),
    # Checked, with nothing for qmpdl to do.
    _Option("rtc", "...", "", _checked(RTC_OPTS, "rtc", _rtc), listed=False),
    _Option("boot", "...", "", _boot, listed=False),
    _Option("overcommit", "...", "", _checked(OVERCOMMIT_OPTS, "overcommit"), listed=False),
    _Option("sandbox", "...", "", _checked(SANDBOX_OPTS, "sandbox", _sandbox), listed=False),
    _Option("display", "...", "", _display, listed=False),
    _Option("no-acpi", None, "", _flag("no_acpi"), listed=False),
    _Option(
        "metrics",
        "HOST:PORT",
        "serve Prometheus metrics of the throttle, QMP and migration at http://HOST:PORT/",
        _metrics,
    ),
]

#: Options of QEMU command lines that qmpdl accepts and ignores (QEMUMachine, libvirt,
#: scripts): with an argument, and flags.
IGNORED_WITH_ARG = ["vga", "parallel", "L", "net", "nic", "add-fd", "k", "bios"]
IGNORED_FLAGS = [
    "nographic",
    "nodefaults",
    "no-user-config",
    "no-reboot",
    "no-hpet",
    "snapshot",
]

#: Options ``--help`` shows with two dashes (qmpdl's own, not QEMU's).
_DOUBLE_DASH = (
    *("workload", "qemu-version", "dirtylimit-controller", "backend", "metrics"),
    *("seed", "scenario"),
)


def usage() -> str:
    lines = [
        f"usage: {PROG} [options]",
        "",
        "A QMP server that answers as QEMU does for the vCPU dirty page rate limit.",
        "",
    ]
    for opt in OPTIONS:
        if not opt.listed:
            continue
        dash = "--" if opt.name in _DOUBLE_DASH else "-"
        head = f"{dash}{opt.name}" + (f" {opt.arg}" if opt.arg else "")
        lines.append(f"  {head}")
        lines.append(f"        {_help(opt)}")
    lines += [
        "  -h, --help          this text",
        "  -version            print the version",
        "",
        "Accepted and checked or ignored, for QEMU command lines: "
        + " ".join(
            "-" + o
            for o in [o.name for o in OPTIONS if not o.listed] + IGNORED_FLAGS + IGNORED_WITH_ARG
        ),
        "",
        f"Environment: {ENV_OPTIONS}='--workload ... --backend sim' is appended to the "
        f"command line; {ENV_BACKEND}=sim|kvm is --backend.",
        "",
        "Example:",
        f"  {PROG} -qmp unix:qmp.sock,server=on,wait=off -smp 4 -accel sim,dirty-ring-size=4096",
    ]
    return "\n".join(lines) + "\n"


def _help(opt: _Option) -> str:
    """An option's help; the choices that live elsewhere are looked up (only --help
    pays for those imports)."""
    if opt.name == "dirtylimit-controller":
        from qmpdl.dirtylimit.controllers import CONTROLLERS

        return "the dirty limit's throttle controller: " + "; ".join(
            f"{name}: {factory.summary}" for name, factory in CONTROLLERS.items()
        )
    if opt.name == "qemu-version":
        from qmpdl.profile import profile_names

        return f"the QEMU version to answer as ({', '.join(profile_names())})"
    return opt.help


def _lookup(arg: str) -> tuple[_Option | None, str, str | None]:
    """The option ``arg`` names (one or two dashes), its name, an inline ``=value``."""
    name = arg[2:] if arg.startswith("--") else arg[1:]
    inline = None
    table = _table()
    if name not in table and "=" in name and name.split("=", 1)[0] in table:
        name, inline = name.split("=", 1)
    return table.get(name), name, inline


_TABLE: dict[str, _Option] = {}


def _table() -> dict[str, _Option]:
    if not _TABLE:
        _TABLE.update({o.name: o for o in OPTIONS})
    return _TABLE


def _first_pass(argv: Sequence[str]) -> None:
    """QEMU looks every option up before acting on any: an unknown one or a missing
    argument fails first (and before ``-msg`` takes effect)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            i += 1
            continue
        opt, name, inline = _lookup(arg)
        if opt is None:
            if name in IGNORED_FLAGS:
                i += 1
                continue
            if name in IGNORED_WITH_ARG:
                if i + 1 >= len(argv):
                    raise UsageError(arg, "requires an argument")
                i += 2
                continue
            raise UsageError(arg, "invalid option")
        if opt.arg is not None and inline is None:
            if i + 1 >= len(argv):
                raise UsageError(arg, "requires an argument")
            i += 1
        i += 1


def parse_args(argv: Sequence[str]) -> MachineConfig:
    """Build the configuration from QEMU-style arguments (raises UsageError)."""
    report.configure(timestamp=False, guest_name=None, with_guest=False)
    _first_pass(argv)
    b = _Builder()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            # QEMU takes a bare argument as the first disk's image
            protocol = re.match(r"([A-Za-z0-9.+-]+):", arg)
            if protocol is not None and "/" not in protocol[1]:
                raise UsageError(arg, f"Unknown protocol '{protocol[1]}'")
            if not os.path.exists(arg):
                raise UsageError(arg, f"Could not open '{arg}': No such file or directory")
            b.drives.append({"file": arg, "index": "0", "media": "disk"})
            i += 1
            continue
        opt, name, inline = _lookup(arg)
        if opt is None:
            i += 2 if name in IGNORED_WITH_ARG else 1
            continue
        if name == "enable-kvm":
            b.accel = b.accel or "kvm"
            i += 1
            continue
        if opt.arg is None:
            opt.handler(b, "")
            i += 1
            continue
        if inline is None:
            inline = argv[i + 1]
            i += 1
        opt.handler(b, inline)
        i += 1
    return _build(b)


def _build(b: _Builder) -> MachineConfig:
    if b.qemu_version is not None:
        from qmpdl.profile import get_profile

        try:
            get_profile(b.qemu_version)
        except ValueError as e:
            raise UsageError(f"--qemu-version {b.qemu_version}", str(e)) from None
    if b.accel is not None and b.machine_accel is not None:
        raise UsageError(None, 'The -accel and "-machine accel=" options are incompatible')
    topology = _smp(b.smp) if b.smp is not None else smp_topology()
    try:
        objects.check_objects(b.objects)
    except OptionError as e:
        raise UsageError(None, str(e)) from None
    monitors, serials = _resolve_chardevs(b)
    accel = _accel(b.accel) if b.accel is not None else None
    if accel is None and b.machine_accel is not None:
        accel = _accel(_machine_accel(b.machine_accel))
    accel = accel or AccelConfig()
    if b.machine_type is not None or b.machine_props or b.no_acpi or b.cpu is not None:
        from qmpdl.profile import get_profile

        profile = get_profile(b.qemu_version)
        try:
            machines.check_machine(profile, b.machine_type, b.machine_props, no_acpi=b.no_acpi)
            if b.cpu is not None:
                machines.check_cpu(profile, ACCELERATORS[accel.kind].presents_as, b.cpu)
        except OptionError as e:
            raise UsageError(None, str(e)) from None
    _check_boot(b.boot)
    ram = _memory(b)
    backend = b.backend or os.environ.get(ENV_BACKEND) or None
    choices = ACCELERATORS.serving("kvm")
    if backend is not None and backend not in choices:
        raise UsageError(None, f"{ENV_BACKEND}={backend}: choose {' or '.join(choices)}")
    stand_in = ACCELERATORS[accel.kind].stand_in
    if stand_in is not None and (backend == stand_in or b.machine_type == "none"):
        # simulated vCPUs that present themselves as KVM (the probe's -machine none
        # has no vCPUs to run)
        accel = AccelConfig(kind=stand_in, dirty_ring_size=accel.dirty_ring_size)
    if b.scenario is not None:
        from qmpdl.vtime.faults import check_scenario
        from qmpdl.vtime.scenario import ScenarioError, load_scenario

        try:
            check_scenario(load_scenario(b.scenario), topology.cpus)
        except ScenarioError as e:
            raise UsageError(f"--scenario {b.scenario}", str(e)) from None
    if b.migration_globals:
        _check_migration_globals(b, accel)
    for netdev in b.netdevs:
        ident = netdev.get("id")
        if not any(d.get("netdev") == ident for d in b.devices):
            report.warning(f"netdev {ident} has no peer")
    fields: dict[str, Any] = {
        "qemu_version": b.qemu_version,
        "name": b.name,
        "cpus": topology.cpus,
        "max_cpus": topology.max_cpus,
        "sockets": topology.sockets,
        "dies": topology.dies,
        "cores": topology.cores,
        "threads": topology.threads,
        "ram_size": ram,
        "accel": accel,
        "workloads": b.workloads,
        "start_paused": b.start_paused,
        "chardevs": b.chardevs,
        "monitors": monitors,
        "trace_patterns": b.trace,
        "trace_file": b.trace_file,
        "incoming": b.incoming,
        "migration_globals": b.migration_globals,
        "uuid": b.uuid,
        "machine_type": b.machine_type,
        "machine_props": b.machine_props,
        "cpu_model": b.cpu_model,
        "objects": b.objects,
        "devices": b.devices,
        "netdevs": b.netdevs,
        "blockdevs": b.blockdevs,
        "drives": b.drives,
        "no_shutdown": b.no_shutdown,
        "serials": serials,
        "debug_threads": b.debug_threads,
        "msg_timestamp": b.msg_timestamp,
        "daemonize": b.daemonize,
        "pidfile": b.pidfile,
        "backend": backend,
        "metrics": b.metrics,
        "seed": b.seed,
        "scenario": b.scenario,
    }
    if b.dirtylimit_controller is not None:
        fields["dirtylimit_controller"] = b.dirtylimit_controller
    return MachineConfig(**fields)


def _check_boot(boot: dict[str, str]) -> None:
    for key, value in boot.items():
        kind = BOOT_KEYS.get(key)
        if kind is None:
            raise UsageError(None, f"Parameter 'boot.{key}' is unexpected")
        if kind == "bool":
            try:
                parse_bool(f"boot.{key}", value)
            except OptionError as e:
                raise UsageError(None, str(e)) from None


def _check_migration_globals(b: _Builder, accel: AccelConfig) -> None:
    """QEMU applies ``-global migration.*`` when it creates the migration object and
    checks the result; its errors carry no option location."""
    from qmpdl.migration.params import GlobalPropertyError, MigrationConfig
    from qmpdl.profile import get_profile

    try:
        config = MigrationConfig(
            get_profile(b.qemu_version),
            kvm_dirty_ring=ACCELERATORS[accel.kind].presents_as == "kvm"
            and accel.dirty_ring_size > 0,
            global_properties=b.migration_globals,
        )
    except GlobalPropertyError as e:
        raise UsageError(None, str(e)) from None
    for warning in config.warnings:
        report.warning(warning)


def command_line(argv: Sequence[str] | None = None) -> list[str]:
    """The arguments, with ``$QMPDL_OPTIONS`` appended."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra = os.environ.get(ENV_OPTIONS)
    if extra:
        args += shlex.split(extra)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    # Everything start-up builds lives until exit: the collector's passes over it while
    # it is being built would find nothing to free (the server collects again, with
    # what was built frozen, once it serves: qmpdl.server.app).
    gc.disable()
    try:
        return _main(argv)
    finally:
        gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    # qmpdl speaks no TLS: asyncio goes without its ssl support, which would load
    # OpenSSL (5 ms and 3 MiB of every start-up).  Only this process, not importers,
    # and not with --metrics (prometheus-client's exposition imports ssl).
    args = command_line(argv)
    wants_ssl = any(a.split("=", 1)[0] in ("--metrics", "-metrics") for a in args)
    if "ssl" not in sys.modules and "asyncio" not in sys.modules and not wants_ssl:
        sys.modules["ssl"] = None  # type: ignore[assignment]
    # Before any library starts a thread of its own (numpy's BLAS does at import): the
    # termination signals are taken by one thread, which learns who sent them.
    from qmpdl.server.signals import block_termination_signals

    block_termination_signals()
    if any(a in ("-h", "-help", "--help") for a in args):
        sys.stdout.write(usage())
        return 0
    if any(a in ("-version", "--version") for a in args):
        sys.stdout.write(f"{PROG} {__version__}\n")
        return 0
    try:
        config = parse_args(args)
    except UsageError as e:
        e.report()
        return 1
    from qmpdl.server.process import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
