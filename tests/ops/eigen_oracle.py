"""Run tf.raw_ops cases in a TensorFlow process with oneDNN off (its Eigen kernels).

``python eigen_oracle.py CASES.pkl OUT.pkl``: CASES is a list of ``(op, named inputs,
attrs)``; a named input given as ``("qint8", int8 array)`` becomes a quantized tensor,
an attr given as ``("dtype", "qint8")`` a TensorFlow dtype. OUT holds, per case, the
outputs as numpy arrays (quantized ones as their storage integers) or the error text.
"""
import os
import pickle
import sys

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STORAGE = {tf.qint8: np.int8, tf.quint8: np.uint8, tf.qint16: np.int16, tf.quint16: np.uint16,
           tf.qint32: np.int32}


def tensor(value):
    if isinstance(value, tuple):
        return tf.constant(value[1], dtype=tf.as_dtype(value[0]))
    return tf.constant(value)


def attr(value):
    return tf.as_dtype(value[1]) if isinstance(value, tuple) and value[0] == "dtype" else value


def main():
    with open(sys.argv[1], "rb") as f:
        cases = pickle.load(f)
    results = []
    for op, named, attrs in cases:
        try:
            out = getattr(tf.raw_ops, op)(**{k: tensor(v) for k, v in named.items()},
                                          **{k: attr(v) for k, v in attrs.items()})
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            results.append([t.numpy().view(STORAGE[t.dtype]) if t.dtype in STORAGE else t.numpy()
                            for t in out])
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            results.append(f"{type(exc).__name__}: {exc}")
    with open(sys.argv[2], "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main()
