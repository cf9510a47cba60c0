"""What the browser tests share: a JupyterLab server of our own and Chromium through Playwright.

The server listens on 127.0.0.1 without a token; its config, runtime, settings,
workspaces and IPython dirs live in a temporary folder; it is stopped by its pid.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "fixtures" / "models"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("SM_NOTEBOOK_CHROMIUM", "/usr/lib/chromium/chromium-headless-shell"))
TIMEOUT_MS = 60_000
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def skip_without_browser():
    """Skip the calling test module when Playwright or Chromium is missing."""
    if sync_playwright is None:
        pytest.skip("playwright (pip install playwright) is not installed", allow_module_level=True)
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium-headless-shell "
                    "(or set SM_NOTEBOOK_CHROMIUM)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells):
    """A notebook of code cells (not run) for the Python 3 kernel."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {},
                   "outputs": [], "source": source} for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook, indent=1))


@contextlib.contextmanager
def jupyterlab(base: Path, root: Path):
    """Run JupyterLab on ``root`` (state under ``base``); yields its URL."""
    env = dict(os.environ)
    for variable, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                             ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                             ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")):
        (base / folder).mkdir()
        env[variable] = str(base / folder)
    news = base / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no news pop-up over the widgets
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    port = free_port()
    log = open(base / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(base / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--disable-dev-shm-usage"])


def open_notebook(browser, url: str, name: str, viewport=(1400, 1800)):
    """A page showing notebook ``name`` alone (``?reset``: no tabs restored from an earlier
    page of the same server) once its kernel is idle."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.get_by_text(KERNEL_IDLE).wait_for()
    return page


def run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
