"""Export keras.applications.ResNet50(weights=None) as a SavedModel, with TensorFlow's outputs.

No download: random weights (seeded). Written as a fixture tree that
check_fixtures_cupy.py --fixtures-root reads:
ROOT/models/resnet50/ (the export) and ROOT/expected/resnet50.npz (a batch of 2 inputs
and TensorFlow's outputs, keys "serve|serving_default|inputs|<key>" / "...|outputs|<key>").
Needs TensorFlow (pip install tensorflow-cpu); run it once before the benchmark.

    python tests/gpu/export_resnet50.py gpu_results/resnet50_fixture
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: export_resnet50.py ROOT")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # TensorFlow on the CPU: the GPU is for cupy
    import keras
    import tensorflow as tf

    root = Path(argv[0])
    export_dir = root / "models" / "resnet50"
    (root / "expected").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    keras.utils.set_random_seed(50)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=1000)
    model.export(str(export_dir), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(export_dir))
    function = loaded.signatures["serving_default"]
    (key, spec), = function.structured_input_signature[1].items()
    batch = np.random.default_rng(50).standard_normal((2, 224, 224, 3)).astype(np.float32)
    outputs = {k: v.numpy() for k, v in function(**{key: tf.constant(batch)}).items()}
    arrays = {f"serve|serving_default|inputs|{key}": batch}
    arrays.update({f"serve|serving_default|outputs|{k}": v for k, v in outputs.items()})
    np.savez(root / "expected" / "resnet50.npz", **arrays)
    print(f"exported {export_dir} (TensorFlow {tf.__version__}, keras {keras.__version__}) "
          f"in {time.perf_counter() - start:.1f} s; outputs {[(k, v.shape) for k, v in outputs.items()]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
