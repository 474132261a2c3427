"""The migration commands of the human monitor.

``migrate``, ``migrate_cancel``, ``migrate_incoming``, ``migrate_continue``,
``migrate_pause``, ``migrate_set_capability``, ``migrate_set_parameter``, ``info
migrate_capabilities``, ``info migrate_parameters`` and ``info migrate``, each built on
QMP calls as QEMU's HMP handlers are (``migration/migration-hmp-cmds.c``,
``monitor/hmp-cmds.c`` in 7.2), with the layout of the profile's QEMU version:

* ``migrate_set_parameter`` reads the value as QEMU does for that parameter: sizes
  with suffixes (``downtime-limit``, ``xbzrle-cache-size``, ``announce-*``,
  ``vcpu-dirty-limit``...), bandwidths in MiB unless suffixed, ``uint8`` parameters
  as C numbers (``0x20``), booleans on/off/yes/no/true/false;
* ``info migrate`` prints the "globals" block (QEMU reads them from its migration
  object; here they come with the monitor, :attr:`Monitor.migration_globals`), then
  what ``query-migrate`` reports.  From 10.1 the layout is the reorganised one, the
  globals and the rest only with ``-a``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from qmpdl.cint import to_u64
from qmpdl.errors import QMPError
from qmpdl.hmp.command import Args, Monitor
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.migration.parameters import (
    GLOBAL_DEFAULTS,
    PARAMETER,
    enum_values,
    info_layout,
    read_text,
)
from qmpdl.profile import Profile

# --- helpers ------------------------------------------------------------------------------


def _call(mon: Monitor, name: str, arguments: JsonObject) -> bool:
    """Run a QMP command; print its error as ``hmp_handle_error`` does."""
    try:
        mon.qmp(name, arguments)
    except QMPError as err:
        mon.print_error(err)
        return False
    return True


def _query(mon: Monitor, name: str) -> JsonValue | None:
    try:
        return mon.qmp(name, {})
    except QMPError as err:
        mon.print_error(err)
        return None


def _obj(value: JsonValue | None) -> JsonObject:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return value


def _u(obj: JsonObject, key: str) -> int:
    """A member printed with ``%PRIu64`` (or ``%u``): the unsigned value."""
    value = obj.get(key, 0)
    assert isinstance(value, int) and not isinstance(value, bool)
    return to_u64(value)


def _f(obj: JsonObject, key: str) -> str:
    """A member printed with ``%0.2f``."""
    value = obj.get(key, 0.0)
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return f"{float(value):.2f}"


def _onoff(value: JsonValue) -> str:
    return "on" if value is True else "off"


def _str(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else "(null)"


def _known(mon: Monitor, enum: str, value: str) -> bool:
    """Whether ``value`` is a member of the QAPI enumeration; if not, say so as QEMU's
    ``qapi_enum_parse`` error does."""
    if value in enum_values(mon.profile, enum):
        return True
    mon.print(f"Error: invalid parameter value: {value}\n")
    return False


# --- migrate, migrate_cancel, migrate_incoming, migrate_continue, migrate_pause -----------


def hmp_migrate(mon: Monitor, args: Args) -> None:
    """``migrate [-d] [-r] uri`` (7.2-9.0: ``[-d] [-b] [-i] [-r] uri``).  Over
    ``human-monitor-command`` the monitor cannot be suspended, so QEMU says so and leaves
    the migration running detached, ``-d`` or not."""
    arguments: JsonObject = {"uri": args["uri"]}
    for flag in ("blk", "inc"):
        if args.get(flag) is True:
            arguments[flag] = True
    arguments["resume"] = args.get("resume") is True
    if not _call(mon, "migrate", arguments):
        return
    if args.get("detach") is not True:
        mon.print("terminal does not allow synchronous migration, continuing detached\n")


def hmp_migrate_cancel(mon: Monitor, args: Args) -> None:
    """``migrate_cancel``: QMP's, which cannot fail."""
    mon.qmp("migrate_cancel", {})


def hmp_migrate_incoming(mon: Monitor, args: Args) -> None:
    """``migrate_incoming uri``; from 9.1 a failed incoming migration does not end the
    process (QEMU's handler passes ``exit-on-error`` false)."""
    arguments: JsonObject = {"uri": args["uri"]}
    if mon.profile.has("migration-incoming-exit-on-error"):
        arguments["exit-on-error"] = False
    _call(mon, "migrate-incoming", arguments)


def hmp_migrate_continue(mon: Monitor, args: Args) -> None:
    """``migrate_continue state``: the state is a MigrationStatus name."""
    state = args["state"]
    assert isinstance(state, str)
    if _known(mon, "MigrationStatus", state):
        _call(mon, "migrate-continue", {"state": state})


def hmp_migrate_pause(mon: Monitor, args: Args) -> None:
    """``migrate_pause``."""
    _call(mon, "migrate-pause", {})


# --- migrate_set_capability ---------------------------------------------------------------


def hmp_migrate_set_capability(mon: Monitor, args: Args) -> None:
    """``migrate_set_capability capability state``."""
    name = args["capability"]
    state = args["state"]
    assert isinstance(name, str) and isinstance(state, bool)
    if _known(mon, "MigrationCapability", name):
        changes: list[JsonValue] = [{"capability": name, "state": state}]
        _call(mon, "migrate-set-capabilities", {"capabilities": changes})


# --- migrate_set_parameter ----------------------------------------------------------------


def parameter_value(
    profile: Profile, name: str, text: str, warn: Callable[[str], None] | None = None
) -> JsonValue:
    """The value ``migrate_set_parameter NAME TEXT`` passes on, read as the parameter's
    row says (:mod:`qmpdl.migration.parameters`); raises QMPError.  ``warn`` receives
    the deprecation warnings of sizes in QEMU versions that print them (hexadecimal
    with a suffix before 8.0)."""
    spec = PARAMETER[name]
    return read_text(profile, spec, spec.hmp, name, text, warn=warn)


def hmp_migrate_set_parameter(mon: Monitor, args: Args) -> None:
    """``migrate_set_parameter parameter value``."""
    name = args["parameter"]
    text = args["value"]
    assert isinstance(name, str) and isinstance(text, str)
    if not _known(mon, "MigrationParameter", name):
        return
    try:
        value = parameter_value(
            mon.profile, name, text, lambda message: mon.print(f"warning: {message}\n")
        )
    except QMPError as err:
        mon.print_error(err)
        return
    _call(mon, "migrate-set-parameters", {name: value})


# --- info migrate_capabilities / migrate_parameters ----------------------------------------


def hmp_info_migrate_capabilities(mon: Monitor, args: Args) -> None:
    """``info migrate_capabilities``: ``name: on|off`` per capability."""
    reply = _query(mon, "query-migrate-capabilities")
    if not isinstance(reply, list):
        return
    for item in reply:
        cap = _obj(item)
        mon.print(f"{_str(cap, 'capability')}: {_onoff(cap.get('state'))}\n")


def hmp_info_migrate_parameters(mon: Monitor, args: Args) -> None:
    """``info migrate_parameters``: one line per parameter, in QEMU's order and units."""
    reply = _query(mon, "query-migrate-parameters")
    if reply is None:
        return
    p = _obj(reply)
    out: list[str] = []
    for spec, line, unit in info_layout(mon.profile):
        name = spec.name
        if line.format == "u":
            out.append(f"{name}: {_u(p, name)}{' ' + unit if unit else ''}\n")
        elif line.format == "onoff":
            out.append(f"{name}: {_onoff(p.get(name))}\n")
        elif line.format == "quoted":
            out.append(f"{name}: '{_str(p, name)}'\n")
        elif line.format == "str":
            out.append(f"{name}: {_str(p, name)}\n")
        elif line.format == "mapping":
            out += _mapping_lines(p.get(name))
        else:
            words = p.get(name)
            listed = [str(w) for w in words] if isinstance(words, list) else []
            out.append(f"{name}:" + "".join(f" {w}" for w in listed) + "\n")
    mon.print("".join(out))


def _mapping_lines(mapping: JsonValue) -> list[str]:
    """block-bitmap-mapping's lines (none until it was set)."""
    if not isinstance(mapping, list):
        return []
    out = ["block-bitmap-mapping:\n"]
    for node in mapping:
        node_obj = _obj(node)
        out.append(f"  '{_str(node_obj, 'node-name')}' -> '{_str(node_obj, 'alias')}'\n")
        bitmaps = node_obj.get("bitmaps")
        for bitmap in bitmaps if isinstance(bitmaps, list) else []:
            bitmap_obj = _obj(bitmap)
            out.append(f"    '{_str(bitmap_obj, 'name')}' -> '{_str(bitmap_obj, 'alias')}'\n")
    return out


# --- info migrate ---------------------------------------------------------------------------


def _globals(mon: Monitor) -> Mapping[str, bool | int]:
    return mon.migration_globals if mon.migration_globals is not None else GLOBAL_DEFAULTS


def _global_lines(mon: Monitor, indent: str) -> list[str]:
    g = _globals(mon)
    has = mon.profile.has

    def flag(name: str) -> str:
        return "on" if g.get(name, GLOBAL_DEFAULTS[name]) else "off"

    lines = [
        f"{indent}store-global-state: {flag('store-global-state')}\n",
        f"{indent}only-migratable: off\n",
        f"{indent}send-configuration: {flag('send-configuration')}\n",
        f"{indent}send-section-footer: {flag('send-section-footer')}\n",
    ]
    if has("migration-send-switchover-start"):
        lines.append(f"{indent}send-switchover-start: {flag('send-switchover-start')}\n")
    if not has("migration-block-compress-removed"):
        lines.append(f"{indent}decompress-error-check: {flag('decompress-error-check')}\n")
    shift = g.get("x-clear-bitmap-shift", GLOBAL_DEFAULTS["x-clear-bitmap-shift"])
    lines.append(f"{indent}clear-bitmap-shift: {int(shift)}\n")
    return lines


def socket_uri(address: JsonObject) -> str:
    """QEMU's ``socket_uri``: a SocketAddress as the URI it was given as."""
    kind = address.get("type")
    if kind == "inet":
        return f"tcp:{_str(address, 'host')}:{_str(address, 'port')}"
    if kind == "unix":
        return f"unix:{_str(address, 'path')}"
    if kind == "fd":
        return f"fd:{_str(address, 'str')}"
    if kind == "vsock":
        return f"vsock:{_str(address, 'cid')}:{_str(address, 'port')}"
    raise ValueError(f"not a SocketAddress: {address!r}")


def int_list_text(values: list[int]) -> str:
    """What QEMU's string output visitor makes of an integer list: runs of consecutive
    values as ``first-last``, separated by commas."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(parts)


def size_to_str(value: int) -> str:
    """QEMU's ``size_to_str``: three significant digits and a binary unit (``4 KiB``)."""
    suffixes = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
    _, exponent = math.frexp(value / (1000.0 / 1024.0))
    index = int((exponent - 1) / 10)  # C division truncates toward zero
    divisor = 1 << (index * 10)
    return f"{_c_g3(value / divisor)} {suffixes[index]}B"


def _c_g3(number: float) -> str:
    """C's ``%0.3g``."""
    return f"{number:.3g}"


def _int_list(obj: JsonObject, key: str) -> list[int]:
    values = obj.get(key)
    assert isinstance(values, list)
    out = []
    for v in values:
        assert isinstance(v, int)
        out.append(to_u64(v))
    return out


def hmp_info_migrate(mon: Monitor, args: Args) -> None:
    """``info migrate`` (``info migrate [-a]`` from 10.1)."""
    reply = _query(mon, "query-migrate")
    if reply is None:
        return
    info = _obj(reply)
    if mon.profile.has("hmp-info-migrate-reorganised"):
        _info_migrate_new(mon, info, args.get("all") is True)
    else:
        _info_migrate_old(mon, info)


def _status_line(info: JsonObject, label: str) -> str:
    """The migration's status after ``label``, with the error of a failed one."""
    status = _str(info, "status")
    if status == "failed" and "error-desc" in info:
        return f"{label}{status} ({_str(info, 'error-desc')})\n"
    return f"{label}{status}\n"


def _socket_lines(info: JsonObject, title: str) -> str:
    """The addresses an incoming migration listens on, one per line (none: no lines)."""
    addresses = info.get("socket-address")
    if not isinstance(addresses, list):
        return ""
    listed = "".join(f"\t{socket_uri(_obj(address))}\n" for address in addresses)
    return f"{title}: [\n{listed}]\n"


def _blocked(mon: Monitor, info: JsonObject) -> None:
    reasons = info.get("blocked-reasons")
    if isinstance(reasons, list):
        mon.print("Outgoing migration blocked:\n")
        for reason in reasons:
            mon.print(f"  {reason}\n")


#: ``info migrate``'s lines (up to 10.0) about the members of each statistics object:
#: ``{MEMBER}`` is printed with ``%PRIu64``, ``{MEMBER:k}`` shifted right by 10 (kbytes),
#: ``{MEMBER:f}`` with ``%0.2f``; a line that starts with ``?`` is left out while its
#: value is 0, one that starts with ``!`` while the member is absent.  (``skipped`` is
#: gone from 9.1's layout.)
_STATS_LAYOUT = {
    "ram": """
        transferred ram: {transferred:k} kbytes
        throughput: {mbps:f} mbps
        remaining ram: {remaining:k} kbytes
        total ram: {total:k} kbytes
        duplicate: {duplicate} pages
        skipped: {skipped} pages
        normal: {normal} pages
        normal bytes: {normal-bytes:k} kbytes
        dirty sync count: {dirty-sync-count}
        page size: {page-size:k} kbytes
        multifd bytes: {multifd-bytes:k} kbytes
        pages-per-second: {pages-per-second}
        ?dirty pages rate: {dirty-pages-rate} pages
        ?postcopy request count: {postcopy-requests}
        ?precopy ram: {precopy-bytes:k} kbytes
        ?downtime ram: {downtime-bytes:k} kbytes
        ?postcopy ram: {postcopy-bytes:k} kbytes
        ?Zero-copy-send fallbacks happened: {dirty-sync-missed-zero-copy} times
    """,
    "disk": """
        transferred disk: {transferred:k} kbytes
        remaining disk: {remaining:k} kbytes
        total disk: {total:k} kbytes
    """,
    "xbzrle-cache": """
        cache size: {cache-size} bytes
        xbzrle transferred: {bytes:k} kbytes
        xbzrle pages: {pages} pages
        xbzrle cache miss: {cache-miss} pages
        xbzrle cache miss rate: {cache-miss-rate:f}
        xbzrle encoding rate: {encoding-rate:f}
        xbzrle overflow: {overflow}
    """,
    "compression": """
        compression pages: {pages} pages
        compression busy: {busy}
        compression busy rate: {busy-rate:f}
        compressed size: {compressed-size:k} kbytes
        compression rate: {compression-rate:f}
    """,
}
#: ``info migrate``'s lines (up to 10.0) about the migration's times, after its status.
_TIMES_LAYOUT = """
    total time: {total-time} ms
    !expected downtime: {expected-downtime} ms
    !downtime: {downtime} ms
    !setup: {setup-time} ms
"""
#: ``info migrate``'s lines (up to 10.0) about the throttles, after the statistics.
_THROTTLE_LAYOUT = """
    !cpu throttle percentage: {cpu-throttle-percentage}
    !dirty-limit throttle time: {dirty-limit-throttle-time-per-round} us
    !dirty-limit ring full time: {dirty-limit-ring-full-time} us
    !postcopy blocktime: {postcopy-blocktime}
"""
#: The same in the layout of 10.1 on (``info migrate -a``).
_THROTTLE_LAYOUT_NEW = """
    !CPU Throttle (%): {cpu-throttle-percentage}
    !Dirty-limit Throttle (us): {dirty-limit-throttle-time-per-round}
    !Dirty-limit Ring Full (us): {dirty-limit-ring-full-time}
    !Postcopy Blocktime (ms): {postcopy-blocktime}
"""
_FIELD = re.compile(r"\{([a-z-]+)(?::([kf]))?\}")


def _stats_text(stats: JsonObject, layout: str, *, skipped: bool = False) -> str:
    text = ""
    for raw in layout.split("\n"):
        line = raw.strip()
        match = _FIELD.search(line)
        if match is None:
            continue
        key, how = match.groups()
        optional = line.startswith(("?", "!"))
        if line.startswith("!") and key not in stats:
            continue
        if (line.startswith("?") and not _u(stats, key)) or (key == "skipped" and not skipped):
            continue
        if how == "f":
            value = _f(stats, key)
        else:
            value = str(_u(stats, key) >> 10 if how == "k" else _u(stats, key))
        text += line[optional : match.start()] + value + line[match.end() :] + "\n"
    return text


def _info_migrate_old(mon: Monitor, info: JsonObject) -> None:
    has = mon.profile.has
    out = mon.print
    out("globals:\n" + "".join(_global_lines(mon, "")))
    _blocked(mon, info)
    if "status" in info:
        out(_status_line(info, "Migration status: "))
        out(_stats_text(info, _TIMES_LAYOUT))
    skipped = not has("migration-skipped-removed")
    for key, layout in _STATS_LAYOUT.items():
        stats = info.get(key)
        if isinstance(stats, dict):
            out(_stats_text(stats, layout, skipped=skipped))
    out(_stats_text(info, _THROTTLE_LAYOUT))
    if "postcopy-vcpu-blocktime" in info:
        text = int_list_text(_int_list(info, "postcopy-vcpu-blocktime"))
        out(f"postcopy vcpu blocktime: {text}\n")
    out(_socket_lines(info, "socket address"))
    vfio = info.get("vfio")
    if isinstance(vfio, dict):
        out(f"vfio device transferred: {_u(vfio, 'transferred') >> 10} kbytes\n")


def _bracketed(values: list[int]) -> str:
    """`` [a, b, ...]`` with a line break after every ten values."""
    text = " ["
    for i, value in enumerate(values):
        if i:
            text += ",\n  " if i % 10 == 0 else ", "
        text += str(value)
    return text + "]\n"


def _time_str(us: int) -> str:
    units = ("us", "ms", "sec")
    index = 0
    while us >= 1000 and index + 1 < len(units):
        us //= 1000
        index += 1
    return f"{us} {units[index]}"


def _info_migrate_new(mon: Monitor, info: JsonObject, show_all: bool) -> None:
    out = mon.print
    _blocked(mon, info)
    if "status" in info:
        out(_status_line(info, "Status: \t\t"))
        if _u(info, "total-time"):
            line = f"Time (ms): \t\ttotal={_u(info, 'total-time')}"
            if "setup-time" in info:
                line += f", setup={_u(info, 'setup-time')}"
            if "expected-downtime" in info:
                line += f", exp_down={_u(info, 'expected-downtime')}"
            if "downtime" in info:
                line += f", down={_u(info, 'downtime')}"
            out(line + "\n")
    out(_socket_lines(info, "Sockets"))
    ram = info.get("ram")
    if isinstance(ram, dict):
        size: Callable[[str], str] = lambda key: size_to_str(_u(ram, key))  # noqa: E731
        out("RAM info:\n")
        out(f"  Throughput (Mbps): \t{_f(ram, 'mbps')}\n")
        out(f"  Sizes: \t\tpagesize={size('page-size')}, total={size('total')}\n")
        out(f"  Transfers: \t\ttransferred={size('transferred')}, remain={size('remaining')}\n")
        line = (
            f"    Channels: \t\tprecopy={size('precopy-bytes')}, "
            f"multifd={size('multifd-bytes')}, postcopy={size('postcopy-bytes')}"
        )
        vfio = info.get("vfio")
        if isinstance(vfio, dict):
            line += f", vfio={size_to_str(_u(vfio, 'transferred'))}"
        out(line + "\n")
        out(f"    Page Types: \tnormal={_u(ram, 'normal')}, zero={_u(ram, 'duplicate')}\n")
        line = f"  Page Rates (pps): \ttransfer={_u(ram, 'pages-per-second')}"
        if _u(ram, "dirty-pages-rate"):
            line += f", dirty={_u(ram, 'dirty-pages-rate')}"
        out(line + "\n")
        line = f"  Others: \t\tdirty_syncs={_u(ram, 'dirty-sync-count')}"
        if _u(ram, "postcopy-requests"):
            line += f", postcopy_req={_u(ram, 'postcopy-requests')}"
        if _u(ram, "downtime-bytes"):
            line += f", downtime_bytes={_u(ram, 'downtime-bytes')}"
        if _u(ram, "dirty-sync-missed-zero-copy"):
            line += f", zerocopy_fallbacks={_u(ram, 'dirty-sync-missed-zero-copy')}"
        out(line + "\n")
    if not show_all:
        return
    out("Globals:\n" + "".join(_global_lines(mon, "  ")))
    cache = info.get("xbzrle-cache")
    if isinstance(cache, dict):
        out(
            f"XBZRLE: size={_u(cache, 'cache-size')}, transferred={_u(cache, 'bytes')}, "
            f"pages={_u(cache, 'pages')}, miss={_u(cache, 'cache-miss')}\n"
            f"  miss_rate={_f(cache, 'cache-miss-rate')}, "
            f"encode_rate={_f(cache, 'encoding-rate')}, overflow={_u(cache, 'overflow')}\n"
        )
    out(_stats_text(info, _THROTTLE_LAYOUT_NEW))
    if "postcopy-vcpu-blocktime" in info:
        blocktimes = _int_list(info, "postcopy-vcpu-blocktime")
        out("Postcopy vCPU Blocktime (ms):\n" + _bracketed(blocktimes))
    if "postcopy-latency" in info:
        out(f"Postcopy Latency (us): {_u(info, 'postcopy-latency')}\n")
    if "postcopy-non-vcpu-latency" in info:
        out(f"Postcopy non-vCPU Latencies (us): {_u(info, 'postcopy-non-vcpu-latency')}\n")
    if "postcopy-vcpu-latency" in info:
        latencies = _int_list(info, "postcopy-vcpu-latency")
        out("Postcopy vCPU Latencies (us):\n" + _bracketed(latencies))
    if "postcopy-latency-dist" in info:
        out("Postcopy Latency Distribution:\n")
        for count, value in enumerate(_int_list(info, "postcopy-latency-dist")):
            low, high = _time_str(1 << count), _time_str(1 << (count + 1))
            out(f"  [ {low:>8} - {high:>8} ]: {value:>10}\n")
