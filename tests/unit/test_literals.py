"""sm_notebook.literals: typed input values are parsed, never evaluated, and their size is bounded."""
from __future__ import annotations

import builtins

import numpy as np
import pytest

from sm_notebook.errors import SavedModelError
from sm_notebook.literals import MAX_INPUT_BYTES, parse_value, split_assignments


@pytest.mark.parametrize("text, expected", [
    ("[[1, 2, 3]]", [[1, 2, 3]]),
    ("[[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]", [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]),
    ('[b"cat", b"sat"]', [b"cat", b"sat"]),
    ("('a', True, None, -3, +2.5, 1e-3)", ("a", True, None, -3, 2.5, 1e-3)),
    ("-1-2j", -1 - 2j),
    ('{"x": [0.5, -1.0], "k": [3]}', {"x": [0.5, -1.0], "k": [3]}),
    ("[np.nan, np.inf, -numpy.inf, np.pi]", None),  # checked below (nan != nan)
])
def test_python_literals(text, expected):
    value = parse_value(text)
    if expected is None:
        assert np.isnan(value[0]) and value[1:] == [np.inf, -np.inf, np.pi]
    else:
        assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, expected", [
    ("np.ones((2, 3))", np.ones((2, 3))),
    ("numpy.zeros(3, dtype='int32')", np.zeros(3, np.int32)),
    ("np.zeros((2, 2), np.float16)", np.zeros((2, 2), np.float16)),
    ("np.full((2,), 7, dtype=np.int64)", np.full((2,), 7, np.int64)),
    ("np.full((2,), b'ab')", np.full((2,), b"ab")),
    ("np.arange(6).reshape(2, 3).astype('float32')", np.arange(6).reshape(2, 3).astype(np.float32)),
    ("np.arange(1, 2, 0.25)", np.arange(1, 2, 0.25)),
    ("np.linspace(0, 1, num=5)", np.linspace(0, 1, 5)),
    ("np.eye(2, 3, k=1, dtype=float)", np.eye(2, 3, 1)),
    ("np.identity(2, dtype='complex64')", np.identity(2, np.complex64)),
    ("np.array([[1, 2]], dtype=np.uint8)", np.array([[1, 2]], np.uint8)),
    ("np.asarray([b'x', b'yy'], dtype=object)", np.asarray([b"x", b"yy"], dtype=object)),
    ("np.float32(1.5)", np.float32(1.5)),
    ("[np.zeros(2), np.ones(1)]", None),
])
def test_whitelisted_numpy_constructors(text, expected):
    value = parse_value(text)
    if expected is None:
        assert [v.tolist() for v in value] == [[0.0, 0.0], [1.0]]
        return
    assert np.asarray(value).dtype == np.asarray(expected).dtype
    np.testing.assert_array_equal(value, expected)


def test_random_constructors_give_the_asked_shape():
    assert parse_value("np.random.rand(2, 3)").shape == (2, 3)
    values = parse_value("np.random.randn(4)")
    assert values.shape == (4,) and values.dtype == np.float64


@pytest.mark.parametrize("text", [
    'np.lib._npyio_impl.os.system("id") or [[1,2,3]]',
    'np.lib._npyio_impl.os.system("id")',
    '__import__("os").system("id")',
    'open("/etc/passwd").read()',
    "np.load('x.npy')",
    "np.fromfile('/etc/passwd')",
    "(1).__class__.__bases__",
    "[x for x in (1, 2)]",
    "lambda: 1",
    "np.ones(3) * 2",
    "2 ** 10",
    "np.zeros(2 ** 40)",
    "[0] * 10",
    "{1, 2}",
    "x",
    "np.array([1], dtype='V1000000')",
    "np.zeros(3, dtype=np.lib)",
    "np.zeros(*[3])",
    "np.zeros(**{'shape': 3})",
    "np.arange(6).tofile('/tmp/x')",
    "f'{1}'",
    "np.ones(3)[0]",
])
def test_everything_else_is_refused_naming_the_expression_and_what_is_allowed(text, monkeypatch):
    def no_import(*args, **kwargs):
        raise AssertionError("the parser imported a module")
    monkeypatch.setattr(builtins, "__import__", no_import)
    with pytest.raises(SavedModelError) as info:
        parse_value(text, what="--input_exprs x")
    message = str(info.value)
    assert message.startswith("Cannot ") and "--input_exprs x" in message
    assert text[:40] in message and "Allowed: Python literals" in message


@pytest.mark.parametrize("text", [
    "np.zeros(1000000000000)", "np.ones((100000, 100000))", "np.full((1, 2000000000), 1.0)", "np.arange(1e12)", "np.linspace(0, 1, 10000000000)",
    "np.eye(100000)", "np.random.rand(100000, 100000)", "np.arange(200000000).astype('complex128')",
])
def test_sizes_are_refused_before_numpy_allocates(text):
    with pytest.raises(SavedModelError, match="limit for typed inputs"):
        parse_value(text)


def test_the_limit_is_counted_over_the_whole_expression():
    assert parse_value("np.zeros(100)", max_bytes=800).size == 100
    with pytest.raises(SavedModelError, match="over the 800-byte limit"):
        parse_value("[np.zeros(60), np.zeros(60)]", max_bytes=800)
    with pytest.raises(SavedModelError, match="astype would allocate 160 bytes"):
        parse_value("np.arange(10).astype('complex128')", max_bytes=100)
    assert MAX_INPUT_BYTES <= 8 * 2**30


@pytest.mark.parametrize("text, message", [
    ("np.zeros((-1, 2))", "negative dimension"),
    ("np.zeros((2.5,))", "a shape is integers"),
    ("np.arange(0, 1, 0)", "step is 0"),
    ("np.arange(0, np.inf)", "elements"),
    ("1" * 5000, "Cannot parse"),
    ("[" * 300 + "]" * 300, "Cannot"),
    ("np.array([1, 'a'], dtype='int32')", "Cannot build"),
    ("np.ones((2, 3)).reshape(4, 4)", "Cannot build"),
    ("[1, 2", "Cannot parse"),
])
def test_malformed_values_are_one_clear_error(text, message):
    with pytest.raises(SavedModelError, match=message):
        parse_value(text)


def test_names_resolve_only_in_the_namespace_given():
    namespace = {"img": np.arange(4.0), "other": 3}
    assert parse_value("img", names=namespace) is namespace["img"]
    np.testing.assert_array_equal(parse_value("img.reshape(2, 2)", names=namespace), [[0, 1], [2, 3]])
    np.testing.assert_array_equal(parse_value("np.array(img, dtype='float32')", names=namespace),
                                  np.arange(4, dtype=np.float32))
    assert parse_value("np.zeros(2, dtype=f32)", names={"f32": np.float32}).dtype == np.float32
    with pytest.raises(SavedModelError, match="dtype"):
        parse_value("np.zeros(2, dtype=t)", names={"t": np.void})
    with pytest.raises(SavedModelError, match="no notebook variable 'missing'"):
        parse_value("missing", names=namespace)
    with pytest.raises(SavedModelError, match="not allowed"):
        parse_value("img.tofile('x')", names=namespace)
    with pytest.raises(SavedModelError, match="names .* are not allowed"):
        parse_value("img")


def test_split_assignments_as_saved_model_cli():
    assert split_assignments("a=1; b=[2, 3];;c=x=y", "--input_exprs") == [
        ("a", "1"), ("b", "[2, 3]"), ("c", "x=y")]
    with pytest.raises(SavedModelError, match="--inputs 'oops': expected <input key>=<value>"):
        split_assignments("oops", "--inputs")
