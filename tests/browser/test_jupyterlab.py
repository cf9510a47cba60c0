"""The widgets in a real JupyterLab, driven by headless Chromium through Playwright.

Starts its own JupyterLab on 127.0.0.1 (no token; config, runtime, settings,
workspaces and IPython dirs in a temporary folder), opens a generated notebook,
edits a signature with the mouse and keyboard, saves, and checks the model on
disk with sm_notebook.inspect. Then it types a duplicate tag-set into the tag
editor and checks the warning, and renders the rich display in the dark theme.
Screenshots go to artifacts/ (gitignored). The server is stopped by its pid.
"""
import shutil
import time

import pytest

import sm_notebook
from lab_session import (ARTIFACTS, MODELS, jupyterlab, launch_chromium, open_notebook, run_all,
                         skip_without_browser, sync_playwright, write_notebook)

pytestmark = pytest.mark.browser
skip_without_browser()

CELLS = [
    "%load_ext sm_notebook",
    "%savedmodel show shown_model --tags serve",
    "%savedmodel edit edited_model --tags serve -o editor",
    "%savedmodel edit tagged_model --widget tags -o tag_editor",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of our own; yields (url, notebook folder); stopped by pid."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    for name, fixture in (("shown_model", "tf1_multi_tags"), ("edited_model", "tf1_multi_tags"),
                          ("tagged_model", "tf1_multi_tags")):
        shutil.copytree(MODELS / fixture, root / name)
    write_notebook(root / "editor.ipynb", CELLS)
    with jupyterlab(base, root) as url:
        yield url, root


def widget_with_label(page, kind: str, label: str):
    """The control of an ipywidget whose description is exactly ``label``."""
    return page.locator(f".widget-{kind}").filter(
        has=page.locator(".widget-label").get_by_text(label, exact=True))


def test_signature_and_tag_editors_in_jupyterlab(lab):
    url, root = lab
    started = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_notebook(browser, url, "editor.ipynb")
            run_all(page)
            editor = page.locator(".jp-OutputArea-output .jupyter-widgets").filter(
                has=page.get_by_text("Remove signature")).first
            editor.wait_for()

            # A new signature: pick "new", type its key, pick an input and an output tensor.
            widget_with_label(page, "dropdown", "signature").locator("select").select_option(
                label="\u2795 new signature")
            widget_with_label(page, "text", "key").locator("input").fill("scores")
            search = widget_with_label(page, "text", "tensors").locator("input")
            tensor_list = editor.locator(".widget-select select")
            search.fill("x:0 [placeholder]")
            page.wait_for_function("document.querySelectorAll('.widget-select select option').length === 1")
            tensor_list.select_option(index=0)
            editor.locator("button.jupyter-button", has_text="+ input").click()
            search.fill("[Softmax]")
            page.wait_for_function("document.querySelectorAll('.widget-select select option').length === 1")
            tensor_list.select_option(index=0)
            widget_with_label(page, "text", "as key").locator("input").fill("probs")
            editor.locator("button.jupyter-button", has_text="+ output").click()
            editor.get_by_text("edit(s) across the tabs, valid.").wait_for()
            editor.get_by_text("add: scores").first.wait_for()

            # The model editor's one Save writes to a new <name>_edited directory by default,
            # after a full diff preview; the model being edited is left as it was.
            before = (root / "edited_model" / "saved_model.pb").read_bytes()
            editor.locator("button.jupyter-button >> visible=true", has_text="Preview diff").click()
            editor.get_by_text("Saving would write:").wait_for()
            editor.locator("button.jupyter-button >> visible=true", has_text="Save").click()
            editor.get_by_text("Saved 1 edit(s)").wait_for()
            editor.screenshot(path=str(ARTIFACTS / "jupyterlab_model_editor.png"))
            assert (root / "edited_model" / "saved_model.pb").read_bytes() == before

            serve = sm_notebook.inspect(root / "edited_model_edited").meta_graph(["serve"])
            assert set(serve.signatures) == {"lookup", "serving_default", "scores"}
            scores = serve.signatures["scores"]
            assert {k: s.name for k, s in scores.inputs.items()} == {"x": "x:0"}
            assert {k: s.name for k, s in scores.outputs.items()} == {"probs": "probabilities:0"}
            assert scores.outputs["probs"].dtype == "DT_FLOAT"

            # The tag-set editor: typing a duplicate tag-set shows the warning before any write.
            tag_editor = page.locator(".jp-OutputArea-output .jupyter-widgets").filter(
                has=page.get_by_text("Tag-sets", exact=False)).filter(has=page.get_by_text("#1", exact=True)).last
            tag_editor.scroll_into_view_if_needed()
            tag_editor.locator(".widget-text input").nth(1).fill("serve")
            tag_editor.get_by_text("duplicate-tag-set").wait_for()
            tag_editor.get_by_text("silently ignores the rest", exact=False).wait_for()
            tag_editor.screenshot(path=str(ARTIFACTS / "jupyterlab_tag_editor.png"))
            assert sm_notebook.inspect(root / "tagged_model").tag_sets[1] == frozenset({"serve", "gpu"})

            # The rich display reads in the dark theme: light text, no opaque light background.
            page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
            page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
            page.locator(".lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
            page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
            shown = page.locator(".jp-OutputArea-output .sm-notebook").first
            shown.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            colors = shown.evaluate("""e => {
                const s = getComputedStyle(e);
                let bg = 'rgba(0, 0, 0, 0)', n = e;
                while (n && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                    bg = getComputedStyle(n).backgroundColor; n = n.parentElement; }
                return [s.color, bg]; }""")
            shown.screenshot(path=str(ARTIFACTS / "jupyterlab_show_dark.png"))
        finally:
            browser.close()
    text_luminance, background_luminance = (luminance(c) for c in colors)
    assert text_luminance > 0.5 > background_luminance, colors
    print(f"browser test: {time.monotonic() - started:.1f} s from page open to last check")


def luminance(css_color: str) -> float:
    """Relative brightness 0..1 of an ``rgb(...)``/``rgba(...)`` colour."""
    parts = css_color[css_color.index("(") + 1:css_color.index(")")].split(",")
    r, g, b = (float(v) / 255 for v in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
