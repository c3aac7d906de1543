"""A real headless Chromium opens the app, loads an example, morphs, and follows a permalink.

Debian's ``chromium`` driven by Playwright's Python package (no downloaded browser).  The
screenshot is written to the test's temporary folder, or to ``$MORPHLIB_SCREENSHOTS`` if set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _app_server import CHROMIUM, CHROMIUM_FLAGS, running_app

TIMEOUT_MS = 90_000

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("browser-app")) as (_, local_url, _engine):
        yield local_url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MORPHLIB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_load_an_example_morph_and_see_the_video(page, url, tmp_path):
    page.goto(url)
    top5 = page.locator("#top5")
    top5.get_by_text("3", exact=True).first.wait_for()  # the default example's prediction, at once
    page.get_by_text("handwritten 7", exact=True).click()
    top5.locator("h2", has_text="7").wait_for()
    page.locator("#family").get_by_text("pixel", exact=True).click()
    page.locator("#run").click()
    video = page.locator("#video video")
    video.wait_for()
    assert video.get_attribute("src")
    page.locator("#status").get_by_text("→").first.wait_for()
    status = page.locator("#status").inner_text()
    assert "7 → 3" in status and "becomes p >= 0.90" in status
    assert video.evaluate("v => v.loop") is True
    page.wait_for_function("() => document.querySelector('#video video').readyState >= 2")
    shot = screenshot_dir(tmp_path) / "app-morph.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert "per step of the path, the first one computed here" in status  # the default is step-local
    page.locator("#strength input").fill("20")  # a new auto cap: morph again, from the cached gradient
    page.locator("#strength input").press("Enter")
    page.locator("#status").get_by_text("the first one reused from the cache").wait_for()
    page.get_by_role("tab", name="Share & API").click()
    link = page.locator("#permalink textarea").input_value()
    for part in ("example=digit-7", "family=pixel", "target=3", "strength=20"):
        assert part in link, link
    page.get_by_role("tab", name="Morph").click()
    assert page.locator("#numbers").get_by_text("p(target)").count() >= 1  # the per-frame table
    page.locator("#mode").get_by_text("budget", exact=True).click()  # a budget no pixel edit reaches
    page.locator("#strength input").fill("100000")
    page.locator("#run").click()
    page.locator("#status").get_by_text("The morph failed").wait_for()
    assert "cannot be reached" in page.locator("#status").inner_text()
    page.wait_for_function("() => !document.querySelector('#video video')")  # the old video is gone


def test_a_permalink_restores_its_settings_and_runs(page, url, tmp_path):
    query = (
        "?example=grating-90&model=orientation-cnn&target=135+degrees&family=csp-joint"
        "&mode=budget&strength=3&frames=6&run=1"
    )
    page.goto(url.rstrip("/") + "/" + query)
    page.locator("#video video").wait_for()
    assert page.locator("#family input[value='csp-joint']").is_checked()
    assert page.locator("#mode input[value='budget']").is_checked()
    assert page.locator("#target input").input_value() == "135 degrees"
    assert page.locator("#frames input[type='number']").input_value() == "6"
    page.locator("#status").get_by_text("135 degrees").first.wait_for()
    assert "90 degrees → 135 degrees" in page.locator("#status").inner_text()
    page.screenshot(path=str(screenshot_dir(tmp_path) / "app-permalink.png"), full_page=True)
