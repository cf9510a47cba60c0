"""The model zoo (issue 11): every entry's signatures run by sm_notebook against TensorFlow.

The zoo is generated on first use by make_zoo.py (TensorFlow, keras, tf_keras, keras-hub,
tensorflow-text, ydf: the ``zoo`` extra) into the cache that zoo_cache.py names, and
reused while the generator and library versions stay the same. Each entry's test fails
on a mismatch or an unclear error and is an expected failure (xfail) when sm_notebook
refuses the model cleanly, naming the ops it lacks; `test_pass_rate` holds the goal.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_zoo  # noqa: E402  (imports neither TensorFlow nor the libraries until it builds)
import zoo_cache  # noqa: E402
import zoo_check  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.zoo, pytest.mark.interop]

#: The share of the zoo's signatures that must match TensorFlow (issue 11); the rest
#: must be refused with a clear error.
PASS_RATE_GOAL = 0.95
#: The share of core-TensorFlow signatures that match (extension-library models are refused
#: by design): all of them today, so any regression fails.
PASS_RATE_FLOOR = 1.0
#: Past this the generator is stopped and the entries it had not finished fail their tests
#: (the whole zoo, 151 entries, took 11.5 minutes with 2 jobs in a clean-clone CI run).
GENERATION_TIMEOUT_S = 40 * 60

NAMES = list(make_zoo.load_registry())
RESULTS: dict = {}


@pytest.fixture(scope="session")
def zoo_root():
    """The zoo directory, generated first where entries are missing (needs TensorFlow;
    SM_NOTEBOOK_ZOO_GENERATE=0 uses what is there)."""
    root = zoo_cache.zoo_dir()
    if make_zoo.missing_entries(root) and os.environ.get("SM_NOTEBOOK_ZOO_GENERATE") != "0":
        pytest.importorskip("tensorflow")
        jobs = os.environ.get("SM_NOTEBOOK_ZOO_JOBS", str(min(2, os.cpu_count() or 1)))
        generator = subprocess.Popen([sys.executable, str(HERE / "make_zoo.py"), "--jobs", jobs],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        try:
            output, _ = generator.communicate(timeout=GENERATION_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(generator.pid, signal.SIGKILL)  # its worker processes too
            output, _ = generator.communicate()
        if generator.returncode:
            print(output[-20000:])  # the failures are also each entry's test failure
    return root


def results_of(name, root) -> list:
    if name not in RESULTS:
        RESULTS[name] = zoo_check.evaluate_entry(name, root)
    return RESULTS[name]


@pytest.mark.filterwarnings("ignore::sm_notebook.SavedModelWarning")
@pytest.mark.parametrize("name", NAMES)
def test_entry(name, zoo_root):
    if zoo_cache.read_entry(name, zoo_root) is None:
        pytest.fail(f"{name} was not generated: run python tests/zoo/make_zoo.py --only {name}")
    results = results_of(name, zoo_root)
    bad = [r for r in results if r.status in ("mismatch", "error")]
    assert not bad, "\n\n".join(f"{r.signature}: {r.status}: {r.detail}" for r in bad)
    refused = [r for r in results if r.status == "refused"]
    if refused and not refused[0].family.startswith("extension/"):  # those must be refused
        pytest.xfail(f"refused, unsupported ops {refused[0].unsupported}: {refused[0].detail[:300]}")


@pytest.mark.filterwarnings("ignore::sm_notebook.SavedModelWarning")
def test_pass_rate(zoo_root):
    results = [r for name in NAMES if zoo_cache.read_entry(name, zoo_root) is not None
               for r in results_of(name, zoo_root)]
    assert results, "the zoo is empty"
    passed = sum(r.status == "pass" for r in results)
    unclear = [f"{r.entry}/{r.signature}: {r.status}" for r in results
               if r.status not in ("pass", "refused")]
    summary = (f"{passed} of {len(results)} signatures match TensorFlow ({passed / len(results):.1%}, "
               f"goal {PASS_RATE_GOAL:.0%}); not matched and not cleanly refused: {unclear}; "
               "python tests/zoo/report.py lists the missing ops")
    assert not unclear, summary
    core = [r for r in results if not r.family.startswith("extension/")]
    assert sum(r.status == "pass" for r in core) / len(core) >= PASS_RATE_FLOOR, summary
    if passed / len(results) < PASS_RATE_GOAL:  # known shortfall, stated in the README
        pytest.xfail(summary)
