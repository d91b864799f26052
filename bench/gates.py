"""Human-gate benchmarks: decision latency, makespan, and listing a large store.

    python bench/gates.py latency  --gates 50
    python bench/gates.py makespan
    python bench/gates.py list     --gates 10000

latency:  N gates pending; each decided in turn (store API); latency = the
          dependant job's first instruction minus the decision's audit time.
makespan: independent work plus gates (scheduled first) decided at scripted times, under
          --executor hybrid (gates hold nothing) vs a blocking baseline (the
          same gates as waiting processes under Snakemake's local executor,
          each holding a core); both against the lower bound
          max(total work / cores, last decision + its dependant).
list:     time of `snakemake-gate list` and `list --json` over N stored gates.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import workflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from snakemake_human_gate import gate  # noqa: E402
from snakemake_human_gate.store import GateStore  # noqa: E402

LATENCY = """
from snakemake_human_gate import decided, gate

rule all:
    input: expand("after/{{i}}.txt", i=range({n}))

rule review:
    output: "gates/{{i}}.json"
    params: gate=gate("Go?")
    shell: gate.AWAIT

rule after:
    input: "gates/{{i}}.json"
    output: "after/{{i}}.txt"
    shell: "date +%s.%N > {{output}}"
"""

MAKESPAN = """
from snakemake_human_gate import gate

rule all:
    input: expand("work/{{i}}.txt", i=range({work})), expand("after/{{g}}.txt", g=range({gates}))

rule review:  # asked first, as a review usually comes early
    output: "gates/{{g}}.json"
    params: gate=gate("Go?")
    priority: 100
    shell: gate.AWAIT

rule after:
    input: "gates/{{g}}.json"
    output: "after/{{g}}.txt"
    shell: "date +%s.%N > {{output}}; sleep {d}; date +%s.%N >> {{output}}"

rule work:
    output: "work/{{i}}.txt"
    shell: "date +%s.%N > {{output}}; sleep {d}; date +%s.%N >> {{output}}"
"""


def snakemake(wd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def wait_pending(store: GateStore, n: int, timeout: float = 300) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (store.root / "gates").exists():
            records = [r for r in store.scan()[0] if r.decision is None]
            if len(records) >= n:
                return sorted(
                    records, key=lambda r: int(r.wildcards["i" if "i" in r.wildcards else "g"])
                )
        time.sleep(0.05)
    raise SystemExit(f"only some of {n} gates became pending")


def latency(args: argparse.Namespace) -> None:
    wd = workflow(LATENCY.format(n=args.gates))
    store = GateStore(wd / ".snakemake" / "gates")
    proc = snakemake(wd, "--executor", "hybrid", "--jobs", "10")
    records = wait_pending(store, args.gates)
    decided_at = {}
    for record in records:
        store.decide(record.id, "approve", actor="bench")
        decided_at[record.wildcards["i"]] = store.get(record.id).decision
        time.sleep(args.spacing)
    if proc.wait(timeout=600) != 0:
        raise SystemExit("snakemake failed")
    asked = {e["gate"]: e["ts"] for e in store.audit.entries() if e["event"] == "decided"}
    lat = []
    for record in records:
        started = float((wd / f"after/{record.wildcards['i']}.txt").read_text().split()[0])
        lat.append(started - asked[record.id])
    lat.sort()
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print(
        f"decision -> dependant started, {len(lat)} gates, --jobs 10 (poll {args.spacing}s apart):"
    )
    print(f"  p50 {statistics.median(lat):.3f} s   p99 {p99:.3f} s   max {lat[-1]:.3f} s")


def _run_makespan(args: argparse.Namespace, blocking: bool) -> tuple[float, float]:
    wd = workflow(MAKESPAN.format(work=args.work, gates=len(args.decide_at), d=args.duration))
    store = GateStore(wd / ".snakemake" / "gates")
    if blocking:  # gates as waiting processes, each holding one of the cores
        proc = snakemake(wd, "--executor", "local", "--cores", str(args.cores))
    else:
        proc = snakemake(
            wd, "--executor", "hybrid", "--jobs", "100", "--hybrid-local-cores", str(args.cores)
        )
    records = wait_pending(store, 1)
    t0 = records[0].created
    pending = {}
    for when, g in sorted((w, g) for g, w in enumerate(args.decide_at)):
        while True:
            found = [r for r in store.scan()[0] if r.wildcards.get("g") == str(g)]
            if found:
                pending[g] = found[0]
                break
            time.sleep(0.05)
        time.sleep(max(0.0, t0 + when - time.time()))
        store.decide(pending[g].id, "approve", actor="bench")
    if proc.wait(timeout=900) != 0:
        raise SystemExit("snakemake failed")
    ends = [float(p.read_text().split()[1]) for p in (wd / "after").glob("*.txt")]
    ends += [float(p.read_text().split()[1]) for p in (wd / "work").glob("*.txt")]
    decided = [e["ts"] for e in store.audit.entries() if e["event"] == "decided"]
    total = (args.work + len(args.decide_at)) * args.duration / args.cores
    bound = max(t0 + total, max(decided) + args.duration) - t0
    return max(ends) - t0, bound


def makespan(args: argparse.Namespace) -> None:
    hybrid, bound = _run_makespan(args, blocking=False)
    blocking, bound_b = _run_makespan(args, blocking=True)
    print(
        f"{args.work} independent jobs + {len(args.decide_at)} gates decided at "
        f"{args.decide_at} s, jobs {args.duration} s, {args.cores} cores "
        "(makespan from the first gate asked to the last job's end):"
    )
    print(f"  lower bound                    {bound:6.2f} s")
    for name, seconds, lower in (
        ("hybrid (gates hold nothing) ", hybrid, bound),
        ("blocking (gate holds a core)", blocking, bound_b),
    ):
        print(f"  {name}   {seconds:6.2f} s   ratio to bound {seconds / lower:.3f}")


def listing(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="hybrid-gates-list-"))
    store = GateStore(root / "store")
    artifact = root / "artifact.txt"
    artifact.write_text("x")
    spec = gate("Ship?", fields={"lr": float})
    start = time.perf_counter()
    for i in range(args.gates):
        store.ask(
            rule="review",
            wildcards={"i": str(i)},
            inputs=[artifact],
            output=root / f"out/{i}.json",
            spec=spec,
            requested_by="bench",
        )
    made = time.perf_counter() - start
    print(f"{args.gates} gates created in {made:.1f} s ({args.gates / made:.0f}/s)")
    for flags in ([], ["--json"], ["--all"]):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "snakemake_human_gate",
                    "--dir",
                    str(store.root),
                    "list",
                    *flags,
                ],
                capture_output=True,
            )
            times.append(time.perf_counter() - start)
            assert run.returncode == 0, run.stderr
        count = len(json.loads(run.stdout)) if flags == ["--json"] else None
        print(
            f"  snakemake-gate list {' '.join(flags):<7} median {statistics.median(times):.2f} s"
            + (f" ({count} rows)" if count is not None else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--gates", type=int, default=50)
    p.add_argument("--spacing", type=float, default=0.3, help="seconds between decisions")
    p.set_defaults(func=latency)
    p = sub.add_parser("makespan")
    p.add_argument("--work", type=int, default=8)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--decide-at", type=float, nargs="+", default=[3.0, 5.0])
    p.set_defaults(func=makespan)
    p = sub.add_parser("list")
    p.add_argument("--gates", type=int, default=10000)
    p.set_defaults(func=listing)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
