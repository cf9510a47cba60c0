"""Long fuzz run: seeded mutations of small fixture exports through the five stages.

    python benchmarks/fuzz.py --cases 10000 [--start 0] [--headroom-mib 1024] [--timeout 30]

Each case copies a fixture (tests/fixtures/models), mutates one of saved_model.pb,
fingerprint.pb, variables.index or the data shard (bit flips, truncations, insertions,
varint edits, protobuf field edits) and runs inspect, diagnose, load, the first
signature call and Builder save in a forked child limited in memory (RLIMIT_AS) and
time. Prints the outcome classes: ok, SavedModelError, other exceptions (count and a
sample), hangs and memory kills. Exit status 1 when anything but ok/SavedModelError
happened. Seeds are the case numbers, so any case can be replayed with --start/--cases.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import hostile  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--headroom-mib", type=int, default=1024,
                        help="address space a case may map beyond its start")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    args = parser.parse_args(argv)

    import sm_notebook  # noqa: F401 - loaded once, before forking, so children start warm
    import sm_notebook.builder  # noqa: F401
    import sm_notebook.diagnose  # noqa: F401
    import sm_notebook.engine.loader  # noqa: F401

    sources = list(hostile.FUZZ_SOURCES)
    classes = collections.Counter()
    stages = collections.Counter()
    samples = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smnb-fuzz-") as work:
        for seed in range(args.start, args.start + args.cases):
            source = sources[seed % len(sources)]
            kind, value = hostile.run_forked(
                hostile.fuzz_case, source, seed, work, hostile.FUZZ_SOURCES[source],
                timeout=args.timeout, headroom=args.headroom_mib << 20)
            if kind == "ok":
                _, outcomes = value
                worst = "ok" if all(o == "ok" for _, o in outcomes) else "SavedModelError"
                classes[worst] += 1
                stages.update(f"{stage}:{outcome}" for stage, outcome in outcomes)
                continue
            if kind == "error":
                name, message, trace, _ = value
                label = f"escape {name}"
            elif kind == "hang":
                label, message, trace = "hang", f"over {args.timeout:.0f} s", ""
            else:
                label = "memory kill" if value == 9 else f"killed by signal {value}"
                message, trace = "", ""
            classes[label] += 1
            samples.setdefault(label, []).append((seed, source, message, trace))
            print(f"seed {seed} ({source}): {label}: {message[:200]}", flush=True)
    elapsed = time.monotonic() - began
    print(f"\n{args.cases} cases (seeds {args.start}..{args.start + args.cases - 1}) in "
          f"{elapsed:.0f} s ({elapsed / max(args.cases, 1):.2f} s/case), headroom "
          f"{args.headroom_mib} MiB, timeout {args.timeout:.0f} s")
    for label, count in classes.most_common():
        print(f"  {label:<28} {count}")
    print("stage outcomes:")
    for key, count in sorted(stages.items()):
        print(f"  {key:<28} {count}")
    for label, found in samples.items():
        seed, source, message, trace = found[0]
        print(f"\nsample {label} (seed {seed}, {source}, {len(found)} case(s)): {message}")
        if trace:
            print(trace)
    return 0 if set(classes) <= {"ok", "SavedModelError"} else 1


if __name__ == "__main__":
    sys.exit(main())
