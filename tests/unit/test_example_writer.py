"""format.example.serialize_example: what saved_model_cli's --input_examples builds, read back by parse_example."""
import numpy as np
import pytest

from sm_notebook.errors import SavedModelError
from sm_notebook.format.example import parse_example, serialize_example


def test_round_trip_through_the_reader():
    raw = serialize_example({"x": [0.5, -1.0], "k": [3, -2, 2**63 - 1], "s": ["h\u00e9", "b"], "b": [b"\x00"]})
    features = parse_example(raw)
    assert sorted(features) == [b"b", b"k", b"s", b"x"]
    np.testing.assert_array_equal(features[b"x"].values(), np.array([0.5, -1.0], np.float32))
    np.testing.assert_array_equal(features[b"k"].values(), [3, -2, 2**63 - 1])
    assert features[b"s"].values() == ["h\u00e9".encode(), b"b"] and features[b"b"].values() == [b"\x00"]
    assert serialize_example({}) == b""


@pytest.mark.parametrize("features, message", [
    ({"x": []}, "non-empty list"),
    ({"x": 1.0}, "non-empty list"),
    ({"x": [True]}, "integers only"),
    ({"x": [1, 2.5]}, "integers only"),
    ({"x": [1.0, "a"]}, "cannot write"),
    ({"x": [None]}, "NoneType is not float"),
])
def test_bad_features_are_one_clear_error(features, message):
    with pytest.raises(SavedModelError, match=message):
        serialize_example(features)
