"""The graph view widget in a real JupyterLab, driven by headless Chromium through Playwright.

Shows the graph of the keras3_mlp fixture (a TF2 export: the signature calls a wrapper
function that calls the model's body), checks the top level, expands both calls in
place, opens a name scope, clicks MatMul and reads its attributes, clicks a captured
variable and reads the statistics the kernel sends back, and finds Softmax by search;
then opens a StatelessIf of tf2_module into its two branches, and finds the ops the engine
lacks (MatMul renamed in memory) outlined red inside a dashed call.
Then (slow; TensorFlow exports keras.applications.ResNet50 once, cached in the temp
folder) it times the view of a TF2 ResNet50 export: the collapsed top level, and the
model's body expanded. Screenshots and timings go to artifacts/. Needs the built front
end (tools/build_frontend.sh).
"""
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import sm_notebook
from lab_session import (ARTIFACTS, MODELS, TIMEOUT_MS, jupyterlab, launch_chromium, open_notebook, run_all,
                         skip_without_browser, sync_playwright, write_notebook)
from sm_notebook.notebook.graph_view import BUNDLE, BUILD_COMMAND

pytestmark = pytest.mark.browser
skip_without_browser()
if not BUNDLE.exists():
    pytest.skip(f"the graph view's front end is not built: {BUILD_COMMAND}", allow_module_level=True)

CELLS = [
    "import sm_notebook\nview = sm_notebook.inspect('mlp_model').graph()\nview",
    "sm_notebook.inspect('control_flow_model').graph('control_flow')",
    # MatMul renamed in memory to SparseMatMul, an op the engine lacks
    "demo = sm_notebook.inspect('mlp_model')\n"
    "for f in demo.meta_graphs[0].proto.graph_def.library.function:\n"
    "    for n in f.node_def:\n"
    "        n.op = 'SparseMatMul' if n.op == 'MatMul' else n.op\n"
    "demo.graph()",
]
RESNET_CACHE = Path(tempfile.gettempdir()) / "sm_notebook_test_cache" / "resnet50_tf_saved_model"
EXPORT_RESNET = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras, tensorflow as tf
keras.utils.set_random_seed(50)
tf.saved_model.save(keras.applications.ResNet50(weights=None), sys.argv[1])
"""


def shown_graph(page):
    """The graph widget of the notebook in front (JupyterLab may reopen the other one behind it)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .smnb-graph").first


def node(scope, name):
    return scope.locator(f".gv-node[data-name='{name}']")


def toggle(scope, name):
    node(scope, name).locator(".gv-toggle").click()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of our own on a folder holding the keras3_mlp fixture."""
    base = tmp_path_factory.mktemp("graph_lab")
    root = base / "root"
    root.mkdir()
    shutil.copytree(MODELS / "keras3_mlp", root / "mlp_model")
    shutil.copytree(MODELS / "tf2_module", root / "control_flow_model")
    write_notebook(root / "graph.ipynb", CELLS)
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(base, root) as url:
        yield url, root


def test_graph_view_expands_calls_and_shows_details(lab):
    url, root = lab
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_notebook(browser, url, "graph.ipynb", viewport=(1500, 1100))
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            run_all(page)
            graph = shown_graph(page)
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

            # tf2_module's control_flow: a StatelessIf opens into both branches, side by side.
            flow = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .smnb-graph").nth(1)
            flow.scroll_into_view_if_needed()
            toggle(flow, "StatefulPartitionedCall_2")
            inner = flow.locator(".gv-node[data-kind='call'][data-name='StatefulPartitionedCall']").first
            inner.locator(".gv-toggle").dispatch_event("click")
            flow.locator(".gv-node[data-kind='group'][data-name='cond'] .gv-toggle").first.dispatch_event("click")
            flow.locator(".gv-node[data-op='StatelessIf'] .gv-toggle").first.dispatch_event("click")
            titles = flow.locator(".gv-cluster-function .gv-cluster-title")
            flow.locator(".gv-cluster-function .gv-cluster-title", has_text="else_branch: ").wait_for()
            assert {t.split(":")[0] for t in titles.all_text_contents()} >= {"then_branch", "else_branch"}
            flow.locator(".gv-fit").click()
            flow.screenshot(path=str(ARTIFACTS / "graph_view_if_branches.png"))

            # Unsupported ops: the call holding them is dashed red, the ops themselves solid red.
            marked = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .smnb-graph").nth(2)
            marked.scroll_into_view_if_needed()
            assert "gv-contains-unsupported" in node(marked, "StatefulPartitionedCall_1").get_attribute("class")
            marked.locator(".gv-search").fill("SparseMatMul")
            marked.locator(".gv-search").press("Enter")
            marked.locator(".gv-matches li").first.click()
            marked.locator(".gv-unsupported[data-op='SparseMatMul']").first.wait_for()
            marked.locator(".gv-details tr.gv-bad").get_by_text("not supported").wait_for()
            marked.screenshot(path=str(ARTIFACTS / "graph_view_unsupported.png"))
        finally:
            browser.close()


def resnet50_export() -> Path:
    """A TF2 export of keras.applications.ResNet50(weights=None), made once by TensorFlow."""
    if (RESNET_CACHE / "saved_model.pb").exists():
        return RESNET_CACHE
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is needed once to export ResNet50 (pip install tensorflow-cpu)")
    partial = RESNET_CACHE.with_name(RESNET_CACHE.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run([sys.executable, "-c", EXPORT_RESNET, str(partial)], check=True, timeout=900)
    partial.rename(RESNET_CACHE)
    return RESNET_CACHE


def drawn_ms(graph) -> float:
    return float(re.search(r"drawn in (\d+) ms", graph.locator(".gv-status").inner_text()).group(1))


@pytest.mark.slow
def test_resnet50_top_level_is_quick_and_its_body_expands(lab):
    url, root = lab
    export = resnet50_export()
    write_notebook(root / "resnet50.ipynb", [
        f"import sm_notebook\nbig = sm_notebook.inspect({str(export)!r}).graph()\nbig"])
    timings = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_notebook(browser, url, "resnet50.ipynb", viewport=(1500, 1100))
            started = time.monotonic()
            run_all(page)
            graph = shown_graph(page)
            try:
                graph.locator(".gv-status", has_text="boxes").wait_for(timeout=3 * TIMEOUT_MS)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "graph_view_resnet50_failure.png"))
                raise
            timings["run_cell_to_top_level_s"] = round(time.monotonic() - started, 2)
            timings["top_level_layout_and_draw_ms"] = drawn_ms(graph)
            assert graph.locator(".gv-node").count() == 4   # input, (captured), the call, output
            graph.screenshot(path=str(ARTIFACTS / "graph_view_resnet50_top_level.png"))
            for level in ("outer", "model"):
                call = graph.locator(".gv-node[data-kind='call']").filter(
                    has=page.locator(".gv-toggle", has_text="\u2295")).first
                started = time.monotonic()
                call.locator(".gv-toggle").click()
                graph.locator(".gv-status", has_text="boxes").wait_for()
                page.wait_for_function("document.querySelectorAll('.gv-node').length > 0")
                timings[f"expand_{level}_call_s"] = round(time.monotonic() - started, 2)
                timings[f"expand_{level}_call_layout_and_draw_ms"] = drawn_ms(graph)
            timings["boxes_with_body_expanded"] = graph.locator(".gv-node").count()
            graph.locator(".gv-fit").click()
            graph.screenshot(path=str(ARTIFACTS / "graph_view_resnet50_expanded.png"))
        finally:
            browser.close()
    (ARTIFACTS / "graph_view_resnet50_timings.json").write_text(json.dumps(timings, indent=1))
    print("ResNet50 graph view:", timings)
    assert timings["top_level_layout_and_draw_ms"] < 1000
    assert timings["boxes_with_body_expanded"] > 150   # the layers, folded by name scope
