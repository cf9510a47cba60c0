"""sm_notebook.Ragged: construction, checks of row_splits, nested lists both ways, rows,
equality and immutability (no TensorFlow: tests/interop/test_ragged_tf.py runs real models)."""
import numpy as np
import pytest

import sm_notebook
from sm_notebook import Ragged, SavedModelError


def test_public_name():
    assert sm_notebook.Ragged is Ragged
    assert "Ragged" in sm_notebook.__all__


def test_values_and_row_splits():
    r = Ragged(np.asarray([1.0, 2.0, 3.0], np.float32), [0, 2, 2, 3])
    assert r.nrows == len(r) == 3
    assert r.ragged_rank == 1
    assert r.shape == (3, None)
    assert r.dtype == np.float32
    assert r.row_splits.dtype == np.int64
    assert r.row_lengths().tolist() == [2, 0, 1]
    assert r.to_list() == [[1.0, 2.0], [], [3.0]]
    assert r[0].tolist() == [1.0, 2.0] and r[-1].tolist() == [3.0]
    assert repr(r) == "Ragged([[1.0, 2.0], [], [3.0]], dtype=float32, row_splits_dtype=int64)"


def test_int32_row_splits_are_kept():
    r = Ragged([5, 6], np.asarray([0, 0, 2], np.int32))
    assert r.row_splits.dtype == np.int32 and r.to_list() == [[], [5, 6]]


@pytest.mark.parametrize("splits, message", [
    ([1, 3], "start at 0, got 1"),
    ([0, 2, 1, 3], r"never decrease: row_splits\[2\] = 1 follows 2"),
    ([0, 2], r"end at the number of values \(3\), got 2"),
    ([], "non-empty vector"),
    ([[0, 3]], "non-empty vector"),
    (np.asarray([0.0, 3.0]), "integers"),
])
def test_bad_row_splits_say_what_is_wrong(splits, message):
    with pytest.raises(SavedModelError, match=message):
        Ragged(np.asarray([1, 2, 3]), splits)


def test_scalar_values_are_refused():
    with pytest.raises(SavedModelError, match="at least a vector"):
        Ragged(np.float32(1), [0, 1])


def test_from_list_infers_ragged_rank_and_dtype():
    r = Ragged.from_list([[[1, 2], [3]], [], [[4]]])
    assert r.ragged_rank == 2 and r.dtype == np.int64
    assert r.to_list() == [[[1, 2], [3]], [], [[4]]]
    assert [s.tolist() for s in r.nested_row_splits] == [[0, 2, 2, 3], [0, 2, 3, 4]]
    assert r[0] == Ragged.from_list([[1, 2], [3]])
    assert r[2].to_list() == [[4]]


def test_from_list_with_uniform_inner_dims():
    r = Ragged.from_list([[[1.0, 2.0]], [], [[3.0, 4.0], [5.0, 6.0]]], ragged_rank=1,
                         dtype=np.float32, row_splits_dtype=np.int32)
    assert r.shape == (3, None, 2) and r.flat_values.shape == (3, 2)
    assert r.row_splits.dtype == np.int32


def test_from_list_strings_and_empty():
    assert Ragged.from_list([["a", "b"], []]).to_list() == [["a", "b"], []]
    empty = Ragged.from_list([[], []])
    assert empty.nrows == 2 and empty.flat_values.shape == (0,)
    assert Ragged.from_list([[]], ragged_rank=1).to_list() == [[]]


@pytest.mark.parametrize("rows, message", [
    ([1, 2], "nested at least 2 deep"),
    ([[1, [2]], [3]], "is the scalar 1, not a list"),
    ([[1, 2], [[3, 4], [5]]], "uniform array"),
    ([[[1.0]], [2.0]], "scalar"),
])
def test_from_list_refuses_bad_nesting(rows, message):
    with pytest.raises(SavedModelError, match=message):
        Ragged.from_list(rows, ragged_rank={"scalar": 2, "uniform array": 1}.get(message))


def test_equality_and_immutability():
    a = Ragged.from_list([[1.0], [2.0, 3.0]])
    assert a == Ragged(np.asarray([1.0, 2.0, 3.0]), [0, 1, 3])
    assert a != Ragged(np.asarray([1.0, 2.0, 3.0]), [0, 2, 3])
    assert a != Ragged.from_list([[[1.0]], [[2.0, 3.0]]])
    with pytest.raises(ValueError):
        a.values[0] = 9.0
    with pytest.raises(ValueError):
        a.row_splits[0] = 1
    with pytest.raises(TypeError):
        hash(a)


def test_input_arrays_are_not_changed_or_aliased_writably():
    values = np.asarray([1.0, 2.0])
    r = Ragged(values, [0, 2])
    values[0] = 5.0  # the caller's array stays the caller's
    assert values.flags.writeable
    assert r.values.flags.writeable is False


def test_components_and_map_arrays():
    r = Ragged.from_list([[[1, 2]], [[3]]])
    parts = r.components()
    assert [p.tolist() for p in parts] == [[1, 2, 3], [0, 1, 2], [0, 2, 3]]
    assert Ragged.from_nested_row_splits(parts[0], parts[1:]) == r
    doubled = r.map_arrays(lambda a: np.asarray(a) * 1)
    assert doubled == r


def test_run_results_show_ragged_outputs_as_rows():
    from sm_notebook.render import RunResult, run_result_html, run_result_text
    result = RunResult({"tokens": Ragged.from_list([["a", "b"], []]),
                        "ids": Ragged.from_list([[1] * 300])}, "serving_default")
    text = run_result_text(result)
    assert "tokens: ragged string (2, ?)" in text and "[['a', 'b'], []]" in text
    assert "ids: ragged int64 (1, ?)" in text and " …" in text
    assert "ragged string" in run_result_html(result)
