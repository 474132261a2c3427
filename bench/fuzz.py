"""Coverage-guided fuzzing of qmpdl's sans-I/O layers with atheris (libFuzzer).

    python3 -m bench.fuzz --inputs 1000000            # every target, ~1 M inputs in all
    python3 -m bench.fuzz --inputs 20000 --only hmp   # one target

Each target (:mod:`bench.fuzz_targets`) runs in a process of its own with atheris
instrumenting the modules it exercises, its share of the inputs (``WEIGHTS``), a fixed
seed and a corpus seeded from the project's recorded exchanges.  Every input is timed
in CPU seconds of the fuzzing thread (a busy host does not make an input look slow):
one taking longer than ``--hang`` seconds is a hang (libFuzzer's own ``-timeout`` stops
an endless one); any exception a target does not document is a crash.  Crashers and
hangs are written to ``bench/results/fuzz-findings/`` (replay one with
``python3 -m bench.fuzz --replay FILE``) and belong in ``tests/fuzz_regressions/`` once
fixed.  Results: ``bench/results/fuzz.json``.  ``tests/test_fuzz.py`` runs a short
fixed-seed slice of every target in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
FINDINGS = RESULTS / "fuzz-findings"
#: An input that takes longer than this is a hang (seconds).
HANG_SECONDS = 2.0
#: libFuzzer kills a run stuck in one input for this long (seconds).
TIMEOUT_SECONDS = 30


# ---------------------------------------------------------------------------- the worker


def _seeds(target: str) -> list[bytes]:
    """Inputs to start from: what the project's tests send (requests, HMP lines)."""
    seeds: list[bytes] = [b"", b"{}", b'{"execute": "qmp_capabilities"}']
    if target == "hmp":
        # the HMP lines of the recorded sessions (tests/hmp, one golden per QEMU) first,
        # each once
        lines: dict[bytes, None] = {}
        for golden in sorted((ROOT / "tests" / "hmp").glob("golden-qemu-*.json")):
            for session in json.loads(golden.read_text(encoding="utf-8"))["sessions"]:
                lines.update(
                    (b"\0" + s["hmp"].encode(), None) for s in session["steps"] if "hmp" in s
                )
        seeds += lines
    corpus = ROOT / "tests" / "differential" / "corpus"
    for path in sorted(corpus.glob("*.json")) if corpus.exists() else []:
        for script in json.loads(path.read_text(encoding="utf-8")):
            for step in script.get("steps", []):
                send = step.get("send")
                for part in [send] if isinstance(send, str) else send or []:
                    seeds.append(part.encode("utf-8", "surrogatepass"))
    # Targets read a few choice bytes first: prefix each seed with zeros.
    return [b"\0\0\0" + s for s in seeds[:400]]


def _dictionary(target: str, path: Path) -> None:
    """libFuzzer tokens: the schemas' names and the JSON punctuation."""
    from bench.fuzz_targets import _HMP_WORDS, _OPTIONS, _VALUES, _words

    words: set[str] = set(_words()) if target in ("qjson", "session", "dispatch") else set()
    words.update(['{"execute": ', '"arguments": ', '"id": ', "{", "}", "[", "]", ":", ","])
    if target == "hmp":
        words.update(_HMP_WORDS)
    if target == "options":
        words.update(_OPTIONS + _VALUES)
    lines = [json.dumps(w) for w in sorted(words) if w and '"' not in w[1:-1]]
    path.write_text("\n".join(f"w{i}={line}" for i, line in enumerate(lines)) + "\n")


def _import_all(name: str) -> None:
    """Import ``name`` and, for a package, every module in it: what is imported later
    (qmpdl imports much on first use) would not be instrumented."""
    import importlib
    import pkgutil

    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}."):
        importlib.import_module(info.name)


def worker(
    target: str, runs: int, seed: int, *, stats_path: Path, hang: float, findings: Path
) -> None:
    """Fuzz ``target`` for ``runs`` inputs in this process (atheris takes it over)."""
    import atheris

    from bench import fuzz_targets

    with atheris.instrument_imports(include=list(fuzz_targets.MODULES[target])):
        for module in fuzz_targets.MODULES[target]:
            _import_all(module)
    run = fuzz_targets.TARGETS[target]
    run(b"")  # build what the target caches (schemas, machine) before timing
    stats: dict[str, Any] = {"target": target, "inputs": 0, "crashes": [], "hangs": []}
    seen: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    last_write = 0.0

    def write_stats() -> None:
        stats["seconds"] = round(time.monotonic() - started, 1)
        stats_path.write_text(json.dumps(stats))

    def one(data: bytes) -> None:
        nonlocal last_write
        begin = time.thread_time()
        problem: str | None = None
        try:
            run(data)
        except Exception:
            problem = traceback.format_exc(limit=-6)
        took = time.thread_time() - begin
        stats["inputs"] += 1
        if problem is not None or took > hang:
            kind = "crashes" if problem is not None else "hangs"
            # one entry per distinct failure (the last lines of its traceback)
            key = f"{kind}:{(problem or '').strip().splitlines()[-1:]}"
            if key in seen:
                seen[key]["count"] += 1
            else:
                digest = hashlib.sha1(data).hexdigest()[:12]
                findings.mkdir(parents=True, exist_ok=True)
                label = "crash" if kind == "crashes" else "hang"
                saved = findings / f"{target}-{label}-{digest}"
                saved.write_bytes(data)
                seen[key] = {
                    "file": str(saved),
                    "seconds": round(took, 3),
                    "error": problem,
                    "count": 1,
                }
                stats[kind].append(seen[key])
        now = time.monotonic()
        if now - last_write > 2 or stats["inputs"] >= runs:
            last_write = now
            write_stats()

    with tempfile.TemporaryDirectory(prefix=f"qmpdl-fuzz-{target}-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i, data in enumerate(_seeds(target)):
            (corpus / f"seed-{i}").write_bytes(data)
        tokens = Path(tmp) / "tokens.dict"
        _dictionary(target, tokens)
        argv = [
            sys.argv[0],
            f"-runs={runs}",
            f"-seed={seed}",
            f"-timeout={TIMEOUT_SECONDS}",
            f"-max_len={fuzz_targets.MAX_LEN}",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
            f"-dict={tokens}",
            str(corpus),
        ]
        atheris.Setup(argv, one)
        atheris.Fuzz()


# ---------------------------------------------------------------------------- the driver


def _shares(total: int, targets: Sequence[str]) -> dict[str, int]:
    from bench.fuzz_targets import WEIGHTS

    weight = sum(WEIGHTS[t] for t in targets)
    return {t: max(1, round(total * WEIGHTS[t] / weight)) for t in targets}


def run_target(
    target: str, runs: int, seed: int, hang: float, findings: Path = FINDINGS
) -> dict[str, Any]:
    """One worker process; its stats plus libFuzzer's figures."""
    with tempfile.TemporaryDirectory(prefix="qmpdl-fuzz-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        argv = [sys.executable, "-m", "bench.fuzz", "--worker", target, "--runs", str(runs)]
        argv += ["--seed", str(seed), "--stats", str(stats_path), "--hang", str(hang)]
        argv += ["--findings", str(findings)]
        begin = time.monotonic()
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
        wall = time.monotonic() - begin
        stats: dict[str, Any] = (
            json.loads(stats_path.read_text()) if stats_path.exists() else {"target": target}
        )
    log = proc.stderr
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", log)
    stats.setdefault("inputs", 0)
    stats.setdefault("crashes", [])
    stats.setdefault("hangs", [])
    stats["wall_seconds"] = round(wall, 1)
    stats["exec_per_second"] = round(stats["inputs"] / wall) if wall else 0
    if cov:
        stats["coverage_edges"], stats["features"], stats["corpus"] = map(int, cov[-1])
    stats["exit_status"] = proc.returncode
    if proc.returncode != 0:
        # libFuzzer stopped: an input ran past -timeout (a hang) or the process died
        kind = "hangs" if "timeout" in log.lower() else "crashes"
        stats[kind].append({"error": log[-3000:], "exit_status": proc.returncode})
    return stats


def replay(path: Path) -> int:
    """Run one saved input through its target (named by the file's prefix)."""
    from bench.fuzz_targets import TARGETS

    target = path.name.split("-", 1)[0]
    data = path.read_bytes()
    begin = time.monotonic()
    TARGETS[target](data)
    print(f"{target}: {path.name} ran cleanly in {time.monotonic() - begin:.3f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from bench.common import machine
    from bench.fuzz_targets import TARGETS

    parser = argparse.ArgumentParser(prog="python3 -m bench.fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all targets")
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), help="these targets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang", type=float, default=HANG_SECONDS, help="seconds = a hang")
    parser.add_argument("--out", type=Path, help="default: bench/results/fuzz[-quick].json")
    parser.add_argument("--quick", action="store_true", help="20,000 inputs (a smoke run)")
    parser.add_argument("--findings", type=Path, default=FINDINGS, help="where crashers go")
    parser.add_argument("--replay", type=Path, help="run one saved input and exit")
    parser.add_argument("--worker", choices=sorted(TARGETS), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.replay is not None:
        return replay(opts.replay)
    if opts.worker is not None:
        worker(
            opts.worker,
            opts.runs,
            opts.seed,
            stats_path=opts.stats,
            hang=opts.hang,
            findings=opts.findings,
        )
        return 0
    if opts.quick:
        opts.inputs = min(opts.inputs, 20_000)
    if opts.out is None:
        opts.out = RESULTS / ("fuzz-quick.json" if opts.quick else "fuzz.json")
    targets = opts.only or list(TARGETS)
    results = []
    begin = time.monotonic()
    for target, runs in _shares(opts.inputs, targets).items():
        print(f"{target}: {runs} inputs ...", flush=True)
        stats = run_target(target, runs, opts.seed, opts.hang, opts.findings)
        print(
            f"  {stats['inputs']} inputs in {stats['wall_seconds']} s "
            f"({stats['exec_per_second']}/s), coverage {stats.get('coverage_edges', '?')} edges, "
            f"{len(stats['crashes'])} crashes, {len(stats['hangs'])} hangs",
            flush=True,
        )
        results.append(stats)
    total = {
        "inputs": sum(s["inputs"] for s in results),
        "seconds": round(time.monotonic() - begin, 1),
        "crashes": sum(len(s["crashes"]) for s in results),
        "hangs": sum(len(s["hangs"]) for s in results),
    }
    report = {
        "machine": machine(),
        "engine": "atheris (libFuzzer), coverage-guided",
        "seed": opts.seed,
        "hang_seconds": opts.hang,
        "total": total,
        "targets": results,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"total: {total['inputs']} inputs in {total['seconds']} s, "
        f"{total['crashes']} crashes, {total['hangs']} hangs -> {opts.out}"
    )
    return 1 if total["crashes"] or total["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
