"""A bounded fuzz suite: 200 seeded mutations of small fixture exports (bit flips,
truncations, insertions, varint edits, protobuf field edits of saved_model.pb,
fingerprint.pb, variables.index and the data shard), each run through inspect,
diagnose, load, the first signature call and Builder save in a forked child with a
memory limit and a timeout. The only allowed outcomes are success and SavedModelError.

The long run is ``python benchmarks/fuzz.py --cases 10000``; replay a failing seed
with ``--start SEED --cases 1``.
"""
import pytest

import sm_notebook.builder  # noqa: F401 - imported before forking, so children start warm
import sm_notebook.diagnose  # noqa: F401
import sm_notebook.engine.loader  # noqa: F401
from hostile import FUZZ_SOURCES, fuzz_case, run_forked

CASES = 200
CHUNK = 25
SOURCES = list(FUZZ_SOURCES)


@pytest.mark.parametrize("first", range(0, CASES, CHUNK), ids=lambda s: f"seeds{s}-{s + CHUNK - 1}")
def test_mutated_exports_fail_only_with_saved_model_error(tmp_path, first):
    findings = []
    for seed in range(first, first + CHUNK):
        source = SOURCES[seed % len(SOURCES)]
        kind, value = run_forked(fuzz_case, source, seed, str(tmp_path), FUZZ_SOURCES[source],
                                 timeout=60)
        if kind == "ok":
            assert {outcome for _, outcome in value[1]} <= {"ok", "SavedModelError"}
            continue
        detail = f"{value[0]}: {value[1]}\n{value[2]}" if kind == "error" else str(value)
        findings.append(f"seed {seed} ({source}): {kind} {detail}")
    assert not findings, "\n\n".join(findings)


def test_the_harness_sees_escapes_hangs_and_memory_kills():
    """run_forked tells the outcomes apart (so the suite above can fail)."""
    import time

    import numpy as np

    from sm_notebook import SavedModelError

    def raise_saved_model_error():
        raise SavedModelError("refused")

    assert run_forked(lambda: 3) == ("ok", 3)
    kind, value = run_forked(raise_saved_model_error)
    assert kind == "error" and value[0] == "SavedModelError" and value[3]
    kind, value = run_forked(lambda: {}["missing"])
    assert kind == "error" and value[0] == "KeyError" and not value[3]
    assert run_forked(time.sleep, 30, timeout=1) == ("hang", None)
    kind, value = run_forked(lambda: np.ones(1 << 28), headroom=256 << 20)
    assert kind == "error" and value[0] in ("MemoryError", "_ArrayMemoryError")
