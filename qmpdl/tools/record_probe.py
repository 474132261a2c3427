"""Record what a QEMU binary answers to the static harness queries, as qmpdl's data:
``python -m qmpdl.tools.record_probe --qemu BINARY --version 7.2``.

(QEMU 10.0 here: ``--qemu /var/cache/qmpdl/qemu-10.0/usr/bin/qemu-system-x86_64 -L
/var/cache/qmpdl/qemu-10.0/usr/share/qemu --module-dir
/var/cache/qmpdl/qemu-10.0/usr/lib/x86_64-linux-gnu/qemu --version 10.0``.)

libvirt's capability probe and domain start ask QEMU about itself (its types and
their properties, machine types, CPU models and their expansions, command-line
options, TPM, SEV and SGX) and about the vCPU objects of a machine.  qmpdl answers
those from data recorded here, per QEMU version, read by :mod:`qmpdl.qemudata`.  The
binary runs with the probe's options (``-machine none,accel=kvm`` / ``accel=tcg``)
and, for the vCPU objects, with the options of a libvirt domain (``-machine pc -cpu
MODEL -smp 2``).

Every request is sent as a harness would send it; the replies are stored as QEMU
returned them (JSON values; errors as ``{"error": {...}}``), except that identical
property descriptions are stored once.  Requests that crash the binary are stored as
``{"crash": STDERR}`` and the binary is restarted.  What KVM offers depends on the
host (the CPU features of each model, the "host" model, KVM's statistics): with
``--anchors``, the answers libvirt's recordings hold replace this host's (listed
under ``anchored`` in each file).  The files are gzip'd JSON,
``qmpdl/data/qemu-VERSION-NAME.json.gz``, NAME being:

* ``qom-types``: every type with its parent and abstractness (in ``qom-list-types``'s
  order), each interface's implementers, and per accelerator the types only known
  once their module is loaded (and the types and command-line options loading each
  one brings);
* ``qom-properties``: ``device-list-properties`` of every device type and
  ``qom-list-properties`` of every type;
* ``machine``: ``query-machines`` (and with ``compat-props`` where the version has
  it), ``query-target``, TPM models and types, command-line options, SEV and SGX
  answers per accelerator, KVM's statistics schemas and a sample of its statistics;
* ``cpu``: per accelerator, ``query-cpu-definitions`` and the static and full
  expansion of every model (plus the probe's expansions with properties; those
  with qemu64's properties as their differences from it);
* ``vcpu``: per accelerator and CPU model, the vCPU object's ``qom-list`` and the
  ``qom-get`` of each of its properties (models other than ``qemu64`` as their
  differences from it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from qmpdl.qemudata.cpu import compact_expansions, compact_vcpus
from qmpdl.tools.process import ManagedProcess
from qmpdl.tools.qemu import SYSTEM_MODULE_DIR, with_modules
from qmpdl.tools.rawqmp import RawQMP

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

#: The accelerators recorded: what qmpdl's sim and kvm backends present, and tcg.
ACCELS = ("kvm", "tcg")

#: The probe's expansions with properties (libvirt 9.0, ../shared/anchors/libvirt-9.0).
PROBE_EXPANSIONS: dict[str, list[dict[str, Any]]] = {
    "kvm": [
        {"type": "static", "model": {"name": "host", "props": {"migratable": False}}},
        {
            "type": "full",
            "model": {"name": "host", "props": {"migratable": False, "hv-passthrough": True}},
        },
    ],
    "tcg": [
        {"type": "static", "model": {"name": "max", "props": {"migratable": False}}},
    ],
}

#: The vCPU machine: libvirt's options for a domain of 2 vCPUs in 2 sockets.
VCPU_MACHINE = ("-machine", "pc", "-m", "128", "-smp", "2,sockets=2,cores=1,threads=1")
#: The first vCPU's QOM path on that machine.
VCPU_PATH = "/machine/unattached/device[0]"

Reply = dict[str, Any]


class CrashedError(Exception):
    """The binary died on a request."""


class RefusedError(Exception):
    """The binary did not start with these options (its stderr is the message)."""


class Qemu:
    """One QEMU process with a QMP connection; requests are sent one at a time."""

    def __init__(
        self,
        binary: str,
        args: Sequence[str],
        firmware: str | None,
        module_dir: str | None = None,
    ) -> None:
        self.proc = ManagedProcess()
        sock = str(self.proc.dir / "qmp.sock")
        argv = [binary, *(["-L", firmware] if firmware else [])]
        argv += ["-S", "-no-user-config", "-nodefaults", "-nographic", "-display", "none"]
        argv += [*args, "-qmp", f"unix:{sock},server=on,wait=off"]
        self.proc.spawn(with_modules(module_dir, argv))
        try:
            self.proc.wait_for_path(sock, 30)
            self.qmp = RawQMP(sock, timeout=120)
            self.qmp.negotiate()
        except (RuntimeError, OSError, EOFError) as err:
            self.proc.proc.wait(30)
            stderr = self.proc.stderr().strip()
            self.proc.close()
            raise RefusedError(stderr[-400:]) from err
        except BaseException:
            self.proc.close()
            raise

    def ask(self, execute: str, arguments: dict[str, Any] | None = None) -> Reply:
        request: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            request["arguments"] = arguments
        self.qmp.send(json.dumps(request).encode())
        try:
            reply: Reply = json.loads(self.qmp.reply())
        except EOFError as err:
            self.proc.proc.wait(30)
            raise CrashedError(self.proc.stderr().strip()[-400:]) from err
        return reply

    def close(self) -> None:
        self.qmp.close()
        self.proc.close()


def value(reply: Reply) -> Any:
    """A reply as stored: its return value, or the whole reply for an error."""
    return reply["return"] if "return" in reply else {"error": reply["error"]}


class Recorder:
    def __init__(
        self,
        binary: str,
        firmware: str | None,
        log: bool = True,
        module_dir: str | None = None,
    ) -> None:
        self.binary = binary
        self.firmware = firmware
        self.log = log
        self.module_dir = module_dir

    def note(self, text: str) -> None:
        if self.log:
            print(text, file=sys.stderr, flush=True)

    def start(self, *args: str) -> Qemu:
        return Qemu(self.binary, args, self.firmware, self.module_dir)

    def probe_machine(self, accel: str) -> Qemu:
        return self.start("-machine", f"none,accel={accel}")

    def ask_all(
        self,
        args: Sequence[str],
        requests: Sequence[tuple[str, dict[str, Any] | None]],
        *,
        prefix: Sequence[tuple[str, dict[str, Any] | None]] = (),
    ) -> list[Any]:
        """Every request's stored reply, restarting the binary after a crash; each
        process first gets ``prefix`` (answers dropped), e.g. to load every module."""
        out: list[Any] = []
        while len(out) < len(requests):
            qemu = self.start(*args)
            try:
                for execute, arguments in prefix:
                    qemu.ask(execute, arguments)
                for execute, arguments in requests[len(out) :]:
                    try:
                        out.append(value(qemu.ask(execute, arguments)))
                    except CrashedError as crash:
                        self.note(f"  crash: {execute} {arguments}: {crash}")
                        out.append({"crash": str(crash)})
                        break
            finally:
                qemu.close()
        return out

    # -- QOM types ---------------------------------------------------------------------------

    def types(self) -> dict[str, Any]:
        probe = ("-machine", "none,accel=kvm")
        listed = self.ask_all(
            probe,
            [
                ("qom-list-types", {"abstract": True}),
                ("qom-list-types", None),
                ("qom-list-types", {"implements": "interface", "abstract": True}),
            ],
        )
        everything, concrete, interfaces = listed
        names = [t["name"] for t in everything]
        parents = {t["name"]: t.get("parent") for t in everything}
        abstract = {t["name"]: bool(t.get("abstract")) for t in everything}
        expected = [t for t in everything if not t.get("abstract")]
        if [t["name"] for t in concrete] != [t["name"] for t in expected]:
            raise RuntimeError("qom-list-types without abstract is not the filtered full list")

        def is_interface(name: str | None) -> bool:
            while name is not None:
                if name == "interface":
                    return True
                name = parents.get(name)
            return False

        del interfaces  # every interface type is in the full listing too
        iface_names = [n for n in names if is_interface(n)]
        implementers = self.ask_all(
            probe, [("qom-list-types", {"implements": i, "abstract": True}) for i in iface_names]
        )
        table = {
            "types": [[n, parents[n], abstract[n]] for n in names],
            "interfaces": {
                i: [t["name"] for t in found]
                for i, found in zip(iface_names, implementers, strict=True)
            },
        }
        self.check_implements(probe, table)
        table["modules"] = self.modules(probe, names)
        return table

    def check_implements(self, probe: Sequence[str], table: dict[str, Any]) -> None:
        """qmpdl derives ``implements`` from parents and the interface lists: check that
        against the binary for every type."""
        from qmpdl.qemudata.qom import TypeTable

        types = TypeTable(table["types"], table["interfaces"])
        names = [row[0] for row in table["types"]]
        live = self.ask_all(
            probe, [("qom-list-types", {"implements": n, "abstract": True}) for n in names]
        )
        for name, found in zip(names, live, strict=True):
            ours = [row[0] for row in types.list(implements=name, abstract=True)]
            if ours != [t["name"] for t in found]:
                raise RuntimeError(f"implements={name}: derived list differs from QEMU's")

    def modules(self, probe: Sequence[str], names: list[str]) -> dict[str, Any]:
        """Per accelerator, the types missing before their module is loaded; for each,
        the types ``device-list-properties`` on it makes known (its module's)."""

        def missing(args: Sequence[str]) -> list[str]:
            check = [("qom-list-properties", {"typename": n}) for n in names]
            return [
                n
                for n, r in zip(names, self.ask_all(args, check), strict=True)
                if isinstance(r, dict) and "error" in r and r["error"]["class"] == "DeviceNotFound"
            ]

        per_accel = {accel: missing(("-machine", f"none,accel={accel}")) for accel in ACCELS}
        candidates = sorted(set().union(*per_accel.values()), key=names.index)
        options = ("query-command-line-options", None)
        base = {o["option"] for o in self.ask_all(probe, [options])[0]}
        loads: dict[str, list[str]] = {}
        adds: dict[str, list[str]] = {}
        for name in candidates:
            requests = [("device-list-properties", {"typename": name})]
            requests += [("qom-list-properties", {"typename": n}) for n in candidates]
            replies = self.ask_all(probe, [*requests, options])
            loads[name] = [
                n
                for n, r in zip(candidates, replies[1:-1], strict=True)
                if not (isinstance(r, dict) and "error" in r)
            ]
            added = [o["option"] for o in replies[-1] if o["option"] not in base]
            if added:
                adds[name] = added
        return {"missing": per_accel, "loads": loads, "options": adds}

    # -- properties ----------------------------------------------------------------------------

    def properties(self, types: dict[str, Any]) -> dict[str, Any]:
        probe = ("-machine", "none,accel=kvm")
        names = [row[0] for row in types["types"]]
        # as after the probe's qom-list-types: every module is loaded
        loaded: list[tuple[str, dict[str, Any] | None]] = [("qom-list-types", None)]
        device = self.ask_all(
            probe, [("device-list-properties", {"typename": n}) for n in names], prefix=loaded
        )
        qom = self.ask_all(
            probe, [("qom-list-properties", {"typename": n}) for n in names], prefix=loaded
        )
        table: list[Any] = []
        index: dict[str, int] = {}

        def compact(reply: Any) -> Any:
            if not isinstance(reply, list):
                return reply
            out = []
            for prop in reply:
                key = json.dumps(prop, sort_keys=True)
                if key not in index:
                    index[key] = len(table)
                    table.append(prop)
                out.append(index[key])
            return out

        return {
            "properties": table,
            "device": {n: compact(r) for n, r in zip(names, device, strict=True)},
            "qom": {n: compact(r) for n, r in zip(names, qom, strict=True)},
        }

    # -- machine-level answers -----------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        qemu = self.probe_machine("kvm")
        try:
            out["query-machines"] = value(qemu.ask("query-machines"))
            compat = qemu.ask("query-machines", {"compat-props": True})
            if "return" in compat:
                out["query-machines-compat-props"] = compat["return"]
            for command in (
                "query-target",
                "query-tpm-models",
                "query-tpm-types",
                "query-command-line-options",
            ):
                out[command] = value(qemu.ask(command))
            # modules add options (-spice...): the list once qom-list-types loaded them
            qemu.ask("qom-list-types")
            out["query-command-line-options-all-modules"] = value(
                qemu.ask("query-command-line-options")
            )
        finally:
            qemu.close()
        for accel in ACCELS:
            qemu = self.probe_machine(accel)
            try:
                out[accel] = {
                    c: value(qemu.ask(c))
                    for c in ("query-sev-capabilities", "query-sgx-capabilities")
                }
            finally:
                qemu.close()
        qemu = self.start("-accel", "kvm", *VCPU_MACHINE)
        try:
            out["kvm"]["query-stats-schemas"] = value(qemu.ask("query-stats-schemas"))
            out["kvm"]["query-stats"] = {
                target: value(qemu.ask("query-stats", {"target": target}))
                for target in ("vm", "vcpu")
            }
        finally:
            qemu.close()
        return out

    # -- CPU models ----------------------------------------------------------------------------

    def cpu(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for accel in ACCELS:
            args = ("-machine", f"none,accel={accel}")
            definitions = self.ask_all(args, [("query-cpu-definitions", None)])[0]
            models = [d["name"] for d in definitions]
            requests: list[tuple[str, dict[str, Any] | None]] = [
                ("query-cpu-model-expansion", {"type": kind, "model": {"name": m}})
                for m in models
                for kind in ("static", "full")
            ]
            replies = self.ask_all(args, requests)
            expansions: dict[str, dict[str, Any]] = {}
            for (_, arguments), reply in zip(requests, replies, strict=True):
                assert arguments is not None
                expansions.setdefault(arguments["model"]["name"], {})[arguments["type"]] = reply
            extra = PROBE_EXPANSIONS[accel]
            extra_replies = self.ask_all(args, [("query-cpu-model-expansion", a) for a in extra])
            out[accel] = {
                "query-cpu-definitions": definitions,
                "expansions": compact_expansions(expansions),
                "with-props": [[a, r] for a, r in zip(extra, extra_replies, strict=True)],
            }
        return out

    # -- vCPU objects --------------------------------------------------------------------------

    def vcpus(self, cpu: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for accel in ACCELS:
            models = list(cpu[accel]["expansions"])
            per_model: dict[str, Any] = {}
            for i, model in enumerate(models):
                args = ("-accel", accel, *VCPU_MACHINE, "-cpu", model)
                try:
                    listing = self.ask_all(args, [("qom-list", {"path": VCPU_PATH})])[0]
                except RefusedError as err:  # -cpu host without KVM, ...
                    per_model[model] = {"refused": str(err)}
                    self.note(f"  vcpu {accel} {model}: refused: {err}")
                    continue
                names = [p["name"] for p in listing]
                gets = self.ask_all(
                    args, [("qom-get", {"path": VCPU_PATH, "property": n}) for n in names]
                )
                per_model[model] = {
                    "qom-list": listing,
                    "qom-get": dict(zip(names, gets, strict=True)),
                }
                self.note(f"  vcpu {accel} {model} ({i + 1}/{len(models)})")
            out[accel] = compact_vcpus(per_model)
        return out


def overlay_anchors(directory: Path, files: dict[str, Any]) -> list[str]:
    """Replace the host-dependent answers of ``files`` (``machine``, ``cpu``, ``vcpu``
    data) by those libvirt's recordings in ``directory`` hold: what KVM offers
    depends on the host, and the recordings are the reference.  Returns what was
    replaced."""
    from qmpdl.tools.libvirtlog import parse

    replaced: list[str] = []
    probes = parse(directory / "a-probe-real-x86_64.qmp.txt")
    # libvirt probes with accel=kvm:tcg (KVM here) first, then with accel=tcg
    for accel, session in zip(ACCELS, probes, strict=True):
        for exchange in session.exchanges:
            answer = json.loads(exchange.value)
            if exchange.outcome == "ERROR":
                answer = {"error": answer}
            args: dict[str, Any] = dict(exchange.arguments or {})
            where = f"{accel} {exchange.command} {json.dumps(args, sort_keys=True)}"
            if exchange.command == "query-cpu-definitions":
                files["cpu"][accel]["query-cpu-definitions"] = answer
            elif exchange.command == "query-cpu-model-expansion":
                model = args["model"]
                if "props" in model:
                    extra = files["cpu"][accel]["with-props"]
                    extra[:] = [e for e in extra if e[0] != args] + [[args, answer]]
                else:
                    files["cpu"][accel]["expansions"][model["name"]][args["type"]] = answer
            elif exchange.command in ("query-sev-capabilities", "query-sgx-capabilities"):
                files["machine"][accel][exchange.command] = answer
            elif exchange.command == "query-command-line-options":
                files["machine"]["query-command-line-options-all-modules"] = answer
            else:
                continue
            replaced.append(where)
    start = parse(directory / "b-start-real.qmp.txt")[0]
    values: dict[str, Any] = {}
    listing = None
    model = ""
    for exchange in start.exchanges:
        args = dict(exchange.arguments or {})
        if exchange.command == "query-hotpluggable-cpus":
            model = json.loads(exchange.value)[0]["type"].removesuffix("-x86_64-cpu")
        if args.get("path") != VCPU_PATH:
            continue
        answer = json.loads(exchange.value)
        if exchange.outcome == "ERROR":
            answer = {"error": answer}
        if exchange.command == "qom-list":
            listing = answer
        elif exchange.command == "qom-get":
            values[str(args["property"])] = answer
    if listing is not None and model:
        recorded = files["vcpu"]["kvm"][model]
        recorded["qom-list"] = listing
        recorded["qom-get"].update(values)
        replaced.append(f"kvm vcpu {model}: qom-list and {len(values)} qom-get")
    return replaced


def write(path: Path, data: object) -> int:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    blob = gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0)
    path.write_bytes(blob)
    return len(blob)


SECTIONS = ("types", "properties", "machine", "cpu", "vcpu")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmpdl.tools.record_probe", description=__doc__)
    parser.add_argument("--qemu", required=True, help="the qemu-system-x86_64 binary")
    parser.add_argument("--version", required=True, help='the data\'s version key ("7.2")')
    parser.add_argument("-L", dest="firmware", help="QEMU's data directory (-L)")
    parser.add_argument(
        "--module-dir",
        help="the binary's own modules, for a QEMU not installed where it looks for "
        f"them ({SYSTEM_MODULE_DIR}): mounted there in a private namespace (root)",
    )
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="the data directory")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="record only these")
    parser.add_argument(
        "--anchors",
        type=Path,
        help="libvirt's recordings (../shared/anchors/libvirt-9.0): their host-dependent "
        "answers replace those of this host",
    )
    opts = parser.parse_args(list(argv) if argv is not None else None)
    from qmpdl.qemudata.store import file_name

    out: Path = opts.out

    def path(name: str) -> Path:
        return out / file_name(opts.version, name)

    recorder = Recorder(opts.qemu, opts.firmware, module_dir=opts.module_dir)
    wanted = set(opts.only or SECTIONS)
    started = time.monotonic()

    def load(name: str) -> Any:
        return json.loads(gzip.decompress(path(name).read_bytes()))

    # section -> its file and how to record it (some read what an earlier one wrote)
    sections: dict[str, tuple[str, Callable[[], Any]]] = {
        "types": ("qom-types", recorder.types),
        "properties": ("qom-properties", lambda: recorder.properties(load("qom-types.json.gz"))),
        "machine": ("machine", recorder.machine),
        "cpu": ("cpu", recorder.cpu),
        "vcpu": ("vcpu", lambda: recorder.vcpus(load("cpu.json.gz"))),
    }
    for section in SECTIONS:
        if section in wanted:
            name, record = sections[section]
            recorder.note(section)
            recorder.note(f"  {write(path(f'{name}.json.gz'), record())} bytes")
    if opts.anchors is not None:
        names = ("machine", "cpu", "vcpu")
        files = {name: load(f"{name}.json.gz") for name in names}
        replaced = overlay_anchors(opts.anchors, files)
        for name in names:
            files[name]["anchored"] = replaced
            write(path(f"{name}.json.gz"), files[name])
        recorder.note(f"{len(replaced)} answers taken from {opts.anchors}")
    recorder.note(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
