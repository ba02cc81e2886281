"""The HTML report and graph page in a real browser: headless Chromium (the Debian package
``chromium``, installed by ``.ci/run``) opens them from disk with the network off, the test
checks that no script error or console error happened, clicks an operator and zooms, and saves a
screenshot that must not be blank.

On CI (``CI=true``) a missing Chromium fails these tests; elsewhere they are skipped with that
reason.  ``TFLITE_REF_SCREENSHOTS=DIR`` keeps the screenshots in DIR.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cdp_browser import Browser, decode_png, find_chromium, ink_share
from conftest import SHARED_MODEL_FILES

from tflite_ref.graph import write_graph
from tflite_ref.report import build_report, report_html

KWS = next(p for p in SHARED_MODEL_FILES if p.stem == "kws_ref_model")
AUDIO = next(p for p in SHARED_MODEL_FILES if p.stem == "audio_preprocessor_int8")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing on CI: .ci/run must apt-get install chromium")
        pytest.skip("no Chromium here (Debian: apt-get install chromium); CI installs it")
    return path


def _keep(shot: Path) -> None:
    where = os.environ.get("TFLITE_REF_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(where) / shot.name)


def _exercise(browser: Browser, page: Path, shot: Path) -> np.ndarray:
    browser.open(page.resolve().as_uri())
    # Click the first operator: the side panel shows its details.
    title = browser.evaluate(
        "(function () { var g = document.querySelector('g.node.op');"
        " g.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
        " return document.querySelector('.graph-panel h3').textContent; })()")
    assert title.startswith("operator 0:"), title
    assert browser.evaluate("document.querySelector('g.node.op').classList.contains("
                            "'selected')")
    before = browser.evaluate("document.querySelector('.graph-canvas svg')"
                              ".getAttribute('viewBox')")
    browser.evaluate("document.querySelector('.graph-canvas svg').dispatchEvent(new WheelEvent("
                     "'wheel', {deltaY: -120, clientX: 200, clientY: 200, bubbles: true,"
                     " cancelable: true})); 0")
    after = browser.evaluate("document.querySelector('.graph-canvas svg')"
                             ".getAttribute('viewBox')")
    assert before != after, "the wheel did not zoom"
    browser.evaluate("document.querySelector('[data-action=\"width\"]').click(); 0")
    browser.drain(0.3)
    errors = browser.console_errors()
    assert not errors, f"console errors in {page.name}: {errors}"
    image = decode_png(browser.screenshot(shot))
    _keep(shot)
    return image


def test_graph_page_in_chromium(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "audio_graph.html"
    write_graph(AUDIO, page, engine="builtin")
    browser = Browser(chromium)
    try:
        image = _exercise(browser, page, tmp_path / "graph.png")
    finally:
        browser.close()
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert ink_share(image) > 0.03, "the screenshot is blank"
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20


def test_report_in_chromium(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "kws_report.html"
    page.write_text(report_html(build_report(KWS, samples=1)), encoding="utf-8")
    browser = Browser(chromium)
    try:
        image = _exercise(browser, page, tmp_path / "report.png")
        # every section rendered, the plots included
        assert browser.evaluate("document.querySelectorAll('section').length") == 6
        assert browser.evaluate("document.querySelectorAll('svg.plot').length") == 2
    finally:
        browser.close()
    assert ink_share(image) > 0.03, "the screenshot is blank"


def test_the_checks_can_fail(chromium: str, tmp_path: Path) -> None:
    """Controls: a script error is caught, and an empty page counts as blank."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
                    "<script>undefinedFunction();</script></body></html>")
    browser = Browser(chromium)
    try:
        browser.open(page.resolve().as_uri())
        browser.drain(0.2)
        assert any("undefinedFunction" in e for e in browser.console_errors())
        blank = decode_png(browser.screenshot(tmp_path / "blank.png"))
    finally:
        browser.close()
    assert ink_share(blank) < 0.001
