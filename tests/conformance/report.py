"""Conformance figures: run the selected upstream cases under several modes, print a table.

    python -m tests.conformance.report [--modes local,hybrid] [--cases local|slurm|all]

``--cases local`` is the all-local selection (cases.LOCAL), ``slurm`` the SLURM
selection (cases.SLURM), ``all`` every case the upstream suite has that fits an
executor (cases.candidates). Prints one line per case and, per mode, passed/total;
a case fails a hybrid mode only if it passes under the matching Snakemake executor.
"""

import argparse
import json
import sys
import time

from tests.conformance import cases, upstream
from tests.conformance.check import run_case
from tests.conformance.runner import MODES

REFERENCE = {
    "hybrid": "local",
    "hybrid-slurm": "slurm",
    "hybrid-bundled": "slurm",
    "hybrid-mixed": "slurm",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="local,hybrid")
    parser.add_argument("--cases", choices=("local", "slurm", "all"), default="local")
    parser.add_argument("--json", help="also write the outcomes to this file")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {MODES}")
    module = upstream.load("tests")
    selection = {"local": cases.LOCAL, "slurm": cases.SLURM}
    chosen = selection[args.cases] if args.cases in selection else cases.all_candidates()
    names = [c for c in chosen if hasattr(module, c)]
    print(f"Snakemake {upstream.snakemake_version()}: {len(names)} cases, modes {modes}")
    results: dict[str, dict[str, str]] = {}
    started = time.monotonic()
    for case in names:
        row = results.setdefault(case, {})
        for mode in modes:
            outcome = run_case(mode, case)
            row[mode] = outcome.status
            print(f"{case:60s} {mode:13s} {outcome.status:8s} {outcome.seconds:6.1f} s", flush=True)
    print(f"\n{time.monotonic() - started:.0f} s in all")
    for mode in modes:
        passed = sum(1 for row in results.values() if row[mode] == "passed")
        line = f"{mode:13s} passed {passed}/{len(names)}"
        reference = REFERENCE.get(mode)
        if reference in modes:
            base = [c for c, row in results.items() if row[reference] == "passed"]
            kept = sum(1 for c in base if results[c][mode] == "passed")
            lost = sorted(c for c in base if results[c][mode] != "passed")
            line += f"; of the {len(base)} passing under {reference}: {kept}"
            line += f" (not: {', '.join(lost)})" if lost else ""
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
