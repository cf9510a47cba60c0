"""The conformance harness feeds read-only inputs, so a kernel writing into one fails."""
from __future__ import annotations

import numpy as np
import pytest

from harness import read_only, run_kernel
from sm_notebook.engine.ops import registry


def _writes_into_its_input(ctx, inputs, attrs):
    inputs[0][...] = 0
    return [inputs[0]]


def test_a_kernel_that_writes_into_its_input_raises_in_the_harness(monkeypatch):
    monkeypatch.setitem(registry.KERNELS, "_TWritesInput", registry.OpKernel.simple(
        "_TWritesInput", _writes_into_its_input))
    x = np.arange(4.0)
    with pytest.raises(ValueError, match="read-only"):
        run_kernel("_TWritesInput", [x])
    np.testing.assert_array_equal(x, np.arange(4.0))
    assert x.flags.writeable  # the caller's own array keeps its flags


def test_read_only_covers_scalars_and_lists():
    values = read_only([np.float32(1), np.zeros(2), [np.ones(3)], "text"])
    assert not values[0].flags.writeable and not values[1].flags.writeable
    assert not values[2][0].flags.writeable and values[3] == "text"
