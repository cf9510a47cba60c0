"""RunPanel typed values: parsed by sm_notebook.literals (variables looked up), never evaluated."""
import numpy as np
import pytest

import sm_notebook
from notebook_fixtures import fixture_model
from sm_notebook.notebook.widgets import RunPanel


def test_typed_values_are_parsed_and_fed():
    panel = RunPanel(fixture_model("keras3_mlp"), namespace={"batch": np.ones((2, 8), np.float32)})
    panel.set_input("features", "np.arange(16, dtype='float32').reshape(2, 8)")
    np.testing.assert_array_equal(panel.inputs()["features"], np.arange(16, dtype=np.float32).reshape(2, 8))
    panel._value_fields["features"].value = "[[0.5] * 1][0:0] or [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]"
    with pytest.raises(sm_notebook.SavedModelError, match="is not a literal or an allowed call"):
        panel.inputs()
    panel._value_fields["features"].value = "[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]"  # typing in the box
    assert panel.inputs()["features"] == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]
    panel.set_input("features", "batch")
    assert panel.inputs()["features"] is panel.namespace["batch"]
    panel.run()
    assert panel.result.outputs["output_0"].shape == (2, 4)


def test_code_typed_into_the_panel_never_runs(tmp_path):
    marker = tmp_path / "ran"
    panel = RunPanel(fixture_model("keras3_mlp"), namespace={"np": np})
    panel._value_fields["features"].value = f"__import__('os').system('touch {marker}')"
    panel.run_button.click()
    assert panel.result is None and not marker.exists()
    assert "calling" in panel.status.value and "is not allowed" in panel.status.value
