"""Using sm_notebook never imports TensorFlow (checked in a fresh interpreter)."""
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import MODELS

ROOT = Path(__file__).resolve().parents[2]


def test_loading_inspecting_showing_every_fixture_never_imports_tensorflow():
    script = textwrap.dedent(f"""
        import io, sys, contextlib, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        import sm_notebook
        from sm_notebook import SavedModelError
        from pathlib import Path
        for path in sorted(Path({str(MODELS)!r}).iterdir()):
            info = sm_notebook.inspect(path)
            str(info.diagnose())
            try:
                from sm_notebook import cli
                with contextlib.redirect_stdout(io.StringIO()):
                    cli.main(["show", "--dir", str(path), "--all"])
            except (ImportError, SystemExit):
                pass
            for tags in info.tag_sets:
                try:
                    model = sm_notebook.load(path, tags=tags)
                except SavedModelError:
                    continue
                for key, function in model.signatures.items():
                    feeds = dict(
                        (name, np.zeros([1 if d is None else d for d in spec.shape or ()],
                                        dtype=object if spec.dtype_short == "string" else spec.dtype_short))
                        for name, spec in info.signature(key, tags).inputs.items())
                    try:
                        function(**feeds)
                    except SavedModelError:
                        pass  # e.g. zeros are not a valid serialized tf.Example
        bad = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith(("tensorflow.", "keras", "tf_keras")))
        print("IMPORTED:", bad)
        sys.exit(1 if bad else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "IMPORTED: []" in result.stdout
