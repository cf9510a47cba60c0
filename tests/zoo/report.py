"""Print the zoo's coverage table by model family (markdown, for the README), the missing ops
ranked by how many entries they block, and the entries that fail for other reasons.

Usage:
    python tests/zoo/report.py                  # run every generated entry with sm_notebook
    python tests/zoo/report.py --only NAME...   # just these
    python tests/zoo/report.py --json out.json  # also write the per-signature results
    python tests/zoo/report.py --collapse keras-hub   # one row for every keras-hub/* family
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_cache  # noqa: E402
import zoo_check  # noqa: E402

STATUSES = ("pass", "refused", "mismatch", "error")


def coverage_table(results, collapse=()) -> str:
    """Markdown table by family; a family under a prefix in ``collapse`` counts as the prefix."""
    by_family = defaultdict(list)
    for r in results:
        prefix = r.family.partition("/")[0]
        by_family[prefix if prefix in collapse else r.family].append(r)
    lines = ["| family | entries | signatures | pass | refused (missing ops) | mismatch | error |",
             "|---|---|---|---|---|---|---|"]
    total = Counter()
    for family in sorted(by_family):
        rows = by_family[family]
        counts = Counter(r.status for r in rows)
        total.update(counts)
        ops = sorted({op for r in rows if r.status == "refused" for op in r.unsupported})
        ops += sorted({refusal_reason(r) for r in rows if r.status == "refused" and not r.unsupported})
        refused = f"{counts['refused']}" + (f" ({', '.join(ops)})" if ops else "")
        lines.append(f"| {family} | {len({r.entry for r in rows})} | {len(rows)} | {counts['pass']} | "
                     f"{refused} | {counts['mismatch']} | {counts['error']} |")
    signatures = sum(total.values())
    lines.append(f"| **all** | {len({r.entry for r in results})} | {signatures} | {total['pass']} "
                 f"({total['pass'] / max(signatures, 1):.0%}) | {total['refused']} | "
                 f"{total['mismatch']} | {total['error']} |")
    return "\n".join(lines)


def refusal_reason(result) -> str:
    """The first sentence of a refusal that names no missing op."""
    return result.detail.split(". ")[0][:120]


def missing_ops_ranking(results) -> str:
    """Each op the engine lacks, with the entries (and signatures) it keeps from passing."""
    blocked = defaultdict(set)
    signatures = Counter()
    for r in results:
        if r.status != "pass":
            for op in r.unsupported:
                blocked[op].add(r.entry)
                signatures[op] += 1
    if not blocked:
        return "No missing ops: every entry's ops have kernels."
    lines = ["| op | entries blocked | signatures | entries |", "|---|---|---|---|"]
    for op in sorted(blocked, key=lambda o: (-len(blocked[o]), o)):
        lines.append(f"| `{op}` | {len(blocked[op])} | {signatures[op]} | {', '.join(sorted(blocked[op]))} |")
    others = sorted({f"{r.entry}/{r.signature}: {refusal_reason(r)}" for r in results
                     if r.status == "refused" and not r.unsupported})
    if others:
        lines += ["", "Refused for reasons other than a missing op:", ""] + [f"- {o}" for o in others]
    return "\n".join(lines)


def other_failures(results) -> str:
    """Mismatches and errors: engine bugs or unclear refusals, with their text."""
    bad = [r for r in results if r.status in ("mismatch", "error")]
    if not bad:
        return "None."
    return "\n".join(f"- **{r.entry}** `{r.signature}` ({r.status}"
                     + (f"; the scan also lists {', '.join(r.unsupported)}" if r.unsupported else "")
                     + "):\n  ```\n  " + r.detail.strip().replace("\n", "\n  ") + "\n  ```" for r in bad)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--json", type=Path, help="write the per-signature results here")
    parser.add_argument("--collapse", nargs="+", default=(), metavar="PREFIX",
                        help="one table row for all families PREFIX/...")
    args = parser.parse_args(argv)
    root = zoo_cache.zoo_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = zoo_check.evaluate_zoo(root, args.only)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    print(f"## Zoo coverage by family\n\n{coverage_table(results, set(args.collapse))}\n")
    print(f"## Missing ops, ranked by entries blocked\n\n{missing_ops_ranking(results)}\n")
    print(f"## Failures other than missing ops\n\n{other_failures(results)}")


if __name__ == "__main__":
    main()
