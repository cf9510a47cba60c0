"""The graph view widget in a real JupyterLab, driven by headless Chromium through Playwright.

Shows the graph of the keras3_mlp fixture (a TF2 export: the signature calls a wrapper
function that calls the model's body), checks the top level, expands both calls in
place, opens a name scope, clicks MatMul and reads its attributes, clicks a captured
variable and reads the statistics the kernel sends back, and finds Softmax by search.
Screenshots go to artifacts/. Needs the built front end (tools/build_frontend.sh).
"""
import shutil
import time

import numpy as np
import pytest

import sm_notebook
from lab_session import (ARTIFACTS, MODELS, jupyterlab, launch_chromium, open_notebook, run_all,
                         skip_without_browser, sync_playwright, write_notebook)
from sm_notebook.notebook.graph_view import BUNDLE, BUILD_COMMAND

pytestmark = pytest.mark.browser
skip_without_browser()
if not BUNDLE.exists():
    pytest.skip(f"the graph view's front end is not built: {BUILD_COMMAND}", allow_module_level=True)

CELLS = [
    "import sm_notebook\nview = sm_notebook.inspect('mlp_model').graph()\nview",
]


def node(scope, name):
    return scope.locator(f".gv-node[data-name='{name}']")


def toggle(scope, name):
    node(scope, name).locator(".gv-toggle").click()


def test_graph_view_expands_calls_and_shows_details(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(MODELS / "keras3_mlp", root / "mlp_model")
    write_notebook(root / "graph.ipynb", CELLS)
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path, root) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_notebook(browser, url, "graph.ipynb", viewport=(1500, 1100))
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            run_all(page)
            graph = page.locator(".smnb-graph").first
            try:
                graph.wait_for()
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "graph_view_failure.png"))
                raise AssertionError(f"no graph widget; console errors: {errors}") from None
            # Top level: the input, the call, the captured variables folded, the output.
            for name in ("serving_default_features", "StatefulPartitionedCall_1", "output:output_0"):
                node(graph, name).wait_for()
            assert node(graph, "(captured)").get_attribute("data-kind") == "group"
            assert graph.locator(".gv-node[data-op='SaveV2'], .gv-node[data-op='RestoreV2']").count() == 0
            graph.locator(".gv-edge-label", has_text="float32 (?, 8)").first.wait_for()
            graph.screenshot(path=str(ARTIFACTS / "graph_view_top_level.png"))

            # Expand the signature's call, then the model call inside its wrapper.
            toggle(graph, "StatefulPartitionedCall_1")
            node(graph, "StatefulPartitionedCall").wait_for()
            toggle(graph, "StatefulPartitionedCall")
            node(graph, "mlp_1/hidden_1").wait_for()   # the body's shared scope mlp_1 is opened
            toggle(graph, "mlp_1/hidden_1")
            matmul = node(graph, "mlp_1/hidden_1/MatMul")
            matmul.click()
            panel = graph.locator(".gv-details")
            panel.locator("tr[data-field='op'] td").get_by_text("MatMul", exact=True).wait_for()
            assert panel.locator("tr[data-attr='transpose_a'] td").inner_text() == "false (default)"
            assert panel.locator("tr[data-attr='T'] td").inner_text() == "float32"
            assert "float32 (?, 16)" in panel.locator(".gv-outputs").inner_text()
            graph.screenshot(path=str(ARTIFACTS / "graph_view_expanded.png"))

            # A captured variable: shape, dtype and the statistics the kernel computes.
            graph.locator(".gv-collapse").click()
            toggle(graph, "(captured)")
            node(graph, "hidden/kernel_1").click()
            panel.locator("tr[data-stat='mean']").wait_for()
            shown_mean = float(panel.locator("tr[data-stat='mean'] td").inner_text())
            info = sm_notebook.inspect(root / "mlp_model")
            kernel = info.bundle.read("variables/0/.ATTRIBUTES/VARIABLE_VALUE")
            # the panel shows 6 significant digits: relative rounding error at most 5e-6
            assert shown_mean == pytest.approx(float(np.mean(kernel.astype(np.float64))), rel=5e-6)
            assert "(8, 16)" in panel.locator(".gv-variable").inner_text()

            # Search by op type, then reveal the match.
            graph.locator(".gv-search").fill("softmax")
            graph.locator(".gv-search").press("Enter")
            panel.locator(".gv-matches li").first.click()
            panel.locator("tr[data-field='op'] td").get_by_text("Softmax", exact=True).wait_for()
            graph.screenshot(path=str(ARTIFACTS / "graph_view_search.png"))
        finally:
            browser.close()
