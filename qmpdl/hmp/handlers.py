"""What each served command does: the QMP calls QEMU's HMP handler makes, and its output.

Integers are printed with the signedness of QEMU's format strings (``%PRId64`` shows a
uint64 above 2^63 as negative), so values go through :func:`to_i64` / :func:`to_u64`.
A QMP call that QEMU makes with a NULL error pointer (``stop``, ``quit``) has its error
ignored; any other failure prints ``Error: <text>``.
"""

from __future__ import annotations

from qmpdl.cint import to_i64, to_u64
from qmpdl.errors import QmpdlError, QMPError
from qmpdl.hmp.command import Args, Monitor
from qmpdl.hmp.help import show_help
from qmpdl.jsontypes import JsonObject, JsonValue

_DIRTY_LIMIT_HINT = "[Please use 'info vcpu_dirty_limit' to query dirty limit for virtual CPU]\n"
_CPU_TYPE_SUFFIX = "-x86_64-cpu"
_NO_CPU = -1  # QEMU's UNASSIGNED_CPU_INDEX


class ReplyError(QmpdlError, TypeError):
    """A QMP return value does not have the shape the QAPI schema promises."""


def _object(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise ReplyError(f"{what}: expected an object, got {value!r}")
    return value


def _objects(value: JsonValue, what: str) -> list[JsonObject]:
    if not isinstance(value, list):
        raise ReplyError(f"{what}: expected an array, got {value!r}")
    return [_object(item, what) for item in value]


def _int(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReplyError(f"member {key!r}: expected an integer, got {value!r}")
    return value


def _str(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ReplyError(f"member {key!r}: expected a string, got {value!r}")
    return value


def _call(mon: Monitor, name: str, arguments: JsonObject | None = None) -> JsonValue | QMPError:
    """Run a QMP command; its error is returned rather than raised."""
    try:
        return mon.qmp(name, {} if arguments is None else arguments)
    except QMPError as err:
        return err


def _query(mon: Monitor, name: str) -> JsonValue | None:
    """Run a query; on failure print the error and return ``None``."""
    result = _call(mon, name)
    if isinstance(result, QMPError):
        mon.print_error(result)
        return None
    return result


def _cpu_index_argument(args: Args) -> JsonObject:
    """``cpu-index`` for QMP: HMP treats -1 (and absence) as "every vCPU"."""
    cpu_index = args.get("cpu_index", -1)
    assert isinstance(cpu_index, int)
    return {} if cpu_index == -1 else {"cpu-index": cpu_index}


# --- control -------------------------------------------------------------------------------


def hmp_help(mon: Monitor, args: Args) -> None:
    """``help [cmd]``."""
    topic = args.get("name")
    show_help(mon, topic if isinstance(topic, str) else None)


def hmp_info_help(mon: Monitor, args: Args) -> None:
    """``info`` without a sub-command lists the sub-commands."""
    show_help(mon, "info")


def hmp_stop(mon: Monitor, args: Args) -> None:
    """``stop``: pause the vCPUs; errors are ignored."""
    _call(mon, "stop")


def hmp_cont(mon: Monitor, args: Args) -> None:
    """``cont``: resume the vCPUs."""
    result = _call(mon, "cont")
    if isinstance(result, QMPError):
        mon.print_error(result)


def hmp_cpu(mon: Monitor, args: Args) -> None:
    """``cpu N``: make vCPU N the monitor's current CPU (it must exist).  Over
    ``human-monitor-command`` the monitor lives for one line, so only the check shows."""
    index = args["index"]
    assert isinstance(index, int)
    reply = _query(mon, "query-cpus-fast")
    if reply is None:
        return
    # QEMU looks the vCPU up with the value truncated to a C int.
    index = (index & 0xFFFFFFFF) - ((index & 0x80000000) << 1)
    if not any(_int(cpu, "cpu-index") == index for cpu in _objects(reply, "query-cpus-fast")):
        mon.print("invalid CPU index\n")
        return
    mon.cpu_index = index


def hmp_quit(mon: Monitor, args: Args) -> None:
    """``quit``: end the emulator; nothing is printed."""
    _call(mon, "quit")


# --- info ----------------------------------------------------------------------------------


def hmp_info_status(mon: Monitor, args: Args) -> None:
    """``info status``: ``VM status: running`` / ``paused`` / ``paused (<state>)``."""
    reply = _query(mon, "query-status")
    if reply is None:
        return
    info = _object(reply, "query-status")
    running = info.get("running") is True
    text = "VM status: " + ("running" if running else "paused")
    if info.get("singlestep") is True and not mon.profile.has("hmp-info-status-no-singlestep"):
        text += " (single step mode)"
    status = _str(info, "status")
    if not running and status != "paused":
        text += f" ({status})"
    mon.print(text + "\n")


def hmp_info_cpus(mon: Monitor, args: Args) -> None:
    """``info cpus``: one line per vCPU, ``*`` marking the monitor's current CPU."""
    reply = _query(mon, "query-cpus-fast")
    if reply is None:
        return
    cpus = _objects(reply, "query-cpus-fast")
    current = mon.cpu_index
    if current is None:
        # Without a chosen CPU the monitor adopts the first one.
        current = _int(cpus[0], "cpu-index") if cpus else _NO_CPU
    with_model = mon.profile.has("hmp-info-cpus-model")
    for cpu in cpus:
        index = _int(cpu, "cpu-index")
        mark = "*" if index == current else " "
        line = f"{mark} CPU #{to_i64(index)}: thread_id={to_i64(_int(cpu, 'thread-id'))}"
        if with_model:
            line += f" model={_cpu_model(cpu)}"
        mon.print(line + "\n")


def _cpu_model(cpu: JsonObject) -> str:
    """The model name QEMU derives from a CPU's QOM type (``qemu64-x86_64-cpu``)."""
    qom_type = cpu.get("qom-type")
    if not isinstance(qom_type, str):
        return "(null)"
    return qom_type.removesuffix(_CPU_TYPE_SUFFIX)


def hmp_info_version(mon: Monitor, args: Args) -> None:
    """``info version``: ``major.minor.micro`` immediately followed by the package."""
    reply = _query(mon, "query-version")
    if reply is None:
        return
    info = _object(reply, "query-version")
    qemu = _object(info.get("qemu"), "query-version qemu")
    numbers = ".".join(str(to_i64(_int(qemu, key))) for key in ("major", "minor", "micro"))
    mon.print(f"{numbers}{_str(info, 'package')}\n")


def hmp_info_kvm(mon: Monitor, args: Args) -> None:
    """``info kvm``: ``kvm support: enabled`` / ``disabled`` / ``not compiled``."""
    reply = _query(mon, "query-kvm")
    if reply is None:
        return
    info = _object(reply, "query-kvm")
    if info.get("present") is True:
        state = "enabled" if info.get("enabled") is True else "disabled"
    else:
        state = "not compiled"
    mon.print(f"kvm support: {state}\n")


# --- dirty limit ---------------------------------------------------------------------------


def hmp_set_vcpu_dirty_limit(mon: Monitor, args: Args) -> None:
    """``set_vcpu_dirty_limit dirty_rate [cpu_index]``."""
    rate = args["dirty_rate"]
    assert isinstance(rate, int)
    quiet = mon.profile.has("hmp-dirty-limit-quiet")
    if quiet and rate < 0:
        mon.print(f"Error: invalid dirty page limit {rate}\n")
        return
    # Older releases hand the int64 straight to the uint64 parameter.
    arguments = _cpu_index_argument(args) | {"dirty-rate": to_u64(rate)}
    result = _call(mon, "set-vcpu-dirty-limit", arguments)
    if isinstance(result, QMPError):
        mon.print_error(result)
    elif not quiet:
        mon.print(_DIRTY_LIMIT_HINT)


def hmp_cancel_vcpu_dirty_limit(mon: Monitor, args: Args) -> None:
    """``cancel_vcpu_dirty_limit [cpu_index]``."""
    result = _call(mon, "cancel-vcpu-dirty-limit", _cpu_index_argument(args))
    if isinstance(result, QMPError):
        mon.print_error(result)
    else:
        mon.print(_DIRTY_LIMIT_HINT)


def hmp_info_vcpu_dirty_limit(mon: Monitor, args: Args) -> None:
    """``info vcpu_dirty_limit``: one line per limited vCPU."""
    reply = _query(mon, "query-vcpu-dirty-limit")
    if reply is None:
        return
    limits = _objects(reply, "query-vcpu-dirty-limit")
    if not limits:
        # QEMU checks "in service" first; the list is empty exactly when it is not.
        mon.print("Dirty page limit not enabled!\n")
        return
    for entry in limits:
        mon.print(
            f"vcpu[{to_i64(_int(entry, 'cpu-index'))}], "
            f"limit rate {to_i64(_int(entry, 'limit-rate'))} (MB/s), "
            f"current rate {to_i64(_int(entry, 'current-rate'))} (MB/s)\n"
        )


# --- dirty rate ----------------------------------------------------------------------------


def hmp_calc_dirty_rate(mon: Monitor, args: Args) -> None:
    """``calc_dirty_rate [-r] [-b] second [sample_pages_per_GB]``."""
    seconds = args["second"]
    assert isinstance(seconds, int)
    if seconds == 0:
        mon.print("Incorrect period length specified!\n")
        return
    ring, bitmap = args.get("dirty_ring") is True, args.get("dirty_bitmap") is True
    if ring and bitmap:
        mon.print("Either dirty ring or dirty bitmap can be specified!\n")
        return
    mode = "dirty-bitmap" if bitmap else "dirty-ring" if ring else "page-sampling"
    arguments: JsonObject = {"calc-time": seconds}
    sample_pages = args.get("sample_pages_per_GB", -1)
    assert isinstance(sample_pages, int)
    if sample_pages != -1:
        arguments["sample-pages"] = sample_pages
    arguments["mode"] = mode
    result = _call(mon, "calc-dirty-rate", arguments)
    if isinstance(result, QMPError):
        mon.print_error(result)
        return
    mon.print(f"Starting dirty rate measurement with period {seconds} seconds\n")
    mon.print("[Please use 'info dirty_rate' to check results]\n")


def hmp_info_dirty_rate(mon: Monitor, args: Args) -> None:
    """``info dirty_rate``: the last measurement (calc-time in seconds)."""
    reply = _query(mon, "query-dirty-rate")
    if reply is None:
        return
    info = _object(reply, "query-dirty-rate")
    mode = _str(info, "mode")
    mon.print(f"Status: {_str(info, 'status')}\n")
    # The label says ms, the value is start-time in seconds.
    mon.print(f"Start Time: {to_i64(_int(info, 'start-time'))} (ms)\n")
    if mode == "page-sampling" or not mon.profile.has("hmp-dirty-rate-sample-pages-sampling-only"):
        mon.print(f"Sample Pages: {to_u64(_int(info, 'sample-pages'))} (per GB)\n")
    mon.print(f"Period: {to_i64(_int(info, 'calc-time'))} (sec)\n")
    mon.print(f"Mode: {mode}\n")
    if "dirty-rate" not in info:
        mon.print("Dirty rate: (not ready)\n")
        return
    mon.print(f"Dirty rate: {to_i64(_int(info, 'dirty-rate'))} (MB/s)\n")
    if "vcpu-dirty-rate" in info:
        for vcpu in _objects(info["vcpu-dirty-rate"], "vcpu-dirty-rate"):
            mon.print(
                f"vcpu[{to_i64(_int(vcpu, 'id'))}], "
                f"Dirty rate: {to_i64(_int(vcpu, 'dirty-rate'))} (MB/s)\n"
            )
