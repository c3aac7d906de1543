"""A real headless Chromium opens the app, loads an example, morphs, and follows a permalink.

Debian's ``chromium`` driven by Playwright's Python package (no downloaded browser).  The
screenshot is written to the test's temporary folder, or to ``$MORPHLIB_SCREENSHOTS`` if set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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
    yield from open_page(browser, 1400, 1600)


@pytest.fixture
def laptop(browser):
    """A 1400 x 1000 window: what a laptop shows without scrolling."""
    yield from open_page(browser, 1400, 1000)


def open_page(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
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
    assert "7 → 3" in status and "meets the goal (log-odds margin >= 3)" in status
    assert video.evaluate("v => v.loop") is True
    page.wait_for_function("() => document.querySelector('#video video').readyState >= 2")
    shot = screenshot_dir(tmp_path) / "app-morph.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert "per step of the path, the first one computed here" in status  # the default is step-local
    page.locator("#strength input").fill("0.2")  # a new auto cap (RMS): morph again, from the cached gradient
    page.locator("#strength input").press("Enter")
    page.locator("#status").get_by_text("the first one reused from the cache").wait_for()
    page.get_by_role("tab", name="Share & API").click()
    link = page.locator("#permalink textarea").input_value()
    for part in ("example=digit-7", "family=pixel", "target=3", "strength=0.2"):
        assert part in link, link
    page.get_by_role("tab", name="Morph").click()
    assert page.locator("#numbers").get_by_text("p(target)").count() >= 1  # the per-frame table
    page.locator("#mode").get_by_text("budget", exact=True).click()  # a budget no pixel edit reaches
    page.locator("#strength input").fill("5000")
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


# --------------------------------------------------------------------- a public page
EVIL = '<a href="https://evil.example/login">log in</a><img src="https://evil.example/x.png">'


def test_markup_in_a_permalink_is_shown_as_text(page, url):
    """HTML in every parameter of a link: shown as typed in the status, the model info and the
    error toast; no link, no image, no request to its host."""
    fetched: list[str] = []
    page.on("request", lambda r: urlsplit(r.url).hostname == "evil.example" and fetched.append(r.url))
    query = urlencode({"example": "digit-3", "model": EVIL, "target": EVIL, "frames": EVIL, EVIL: "1"})
    page.goto(url.rstrip("/") + "/?" + query)
    page.locator("#status").get_by_text("evil.example").first.wait_for()
    page.locator("#model-info").get_by_text("unknown model").wait_for()
    page.locator("#run").click()
    page.locator(".toast-body").get_by_text("evil.example").first.wait_for()
    page.locator("#status").get_by_text("The morph failed").wait_for()
    for pane in ("#status", "#model-info", ".toast-body"):  # as typed
        assert EVIL in page.locator(pane).first.inner_text(), pane
    assert page.locator('a[href*="evil.example"]').count() == 0
    assert page.locator('img[src*="evil.example"]').count() == 0
    assert fetched == []


def plot_lines(page) -> dict:
    return page.evaluate(
        """() => { const svg = document.querySelector('#plot svg'); if (!svg) return null;
        const lines = [...svg.querySelectorAll('g.mark-line path')].map(p => p.getAttribute('stroke'));
        const legend = [...svg.querySelectorAll('g.role-legend-label text')].map(t => t.textContent);
        return {lines, legend}; }"""
    )


def test_the_plot_is_drawn_after_an_example_is_picked(page, url):
    """The probability plot of a first morph that follows an example click (which clears the
    outputs) has coloured lines and a legend, and so has the next morph toward another class."""
    page.goto(url)
    page.locator("#top5").get_by_text("3", exact=True).first.wait_for()
    page.get_by_text("handwritten 7", exact=True).click()
    page.locator("#top5").locator("h2", has_text="7").wait_for()
    page.locator("#mode").get_by_text("budget", exact=True).click()
    page.locator("#run").click()
    page.locator("#status").get_by_text("→").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#plot svg g.mark-line path').length == 2")
    drawn = plot_lines(page)
    assert drawn["legend"] == ["source", "target"] and all(drawn["lines"]) and len(set(drawn["lines"])) == 2
    page.locator("#target input").fill("5")
    page.locator("#target input").press("Enter")
    page.locator("#run").click()
    page.locator("#status").get_by_text("7 → 5").first.wait_for()
    page.wait_for_timeout(500)
    assert plot_lines(page) == drawn


def test_a_first_morph_fits_a_laptop_window(laptop, url):
    """At 1400 x 1000: the Morph button and the result are both in view; a 28 px digit fills its box;
    no stray timer in the model info; Make a GIF before a morph says why, without an error badge."""
    page = laptop
    page.goto(url)
    page.locator("#top5").get_by_text("3", exact=True).first.wait_for()
    run, video = page.locator("#run").bounding_box(), page.locator("#video").bounding_box()
    assert run["y"] + run["height"] <= 1000 and video["y"] < 1000, (run, video)
    shown = page.locator("#input-image img").first
    natural = shown.evaluate("img => img.naturalWidth")
    assert natural <= 32 and shown.bounding_box()["width"] >= 200  # the digit, enlarged
    page.locator("#model").locator("input").click()
    page.get_by_role("option", name=re.compile("orientation", re.I)).first.click()
    page.locator("#model-info").get_by_text("orientation", exact=False).first.wait_for()
    assert not re.search(r"\d\.\ds", page.locator("#model-info").inner_text())
    page.locator("#make-gif").click()
    page.locator(".toast-body").get_by_text("morph an image first").wait_for()
    assert page.locator("#gif .error").count() == 0 and page.locator("#gif").get_by_text("Error").count() == 0
    assert page.locator("#change-scale .scale-bar").is_visible()


def test_an_offline_photo_runs_or_says_so_once_and_error_toasts_close(page, url):
    page.goto(url)
    page.locator("#top5").get_by_text("3", exact=True).first.wait_for()
    page.get_by_text("Chelsea the cat", exact=True).click()  # offline: on the ImageNet model from PyPI
    page.locator("#status").get_by_text("suggested target").wait_for()
    assert "cannot be downloaded" not in page.locator("#status").inner_text()
    assert page.locator(".toast-body").count() == 0
    page.goto(url.rstrip("/") + "/?example=cat&model=resnet50-l2-eps3&run=1")
    page.locator("#status").get_by_text("cannot be downloaded").wait_for()
    assert "pick it again" not in page.locator("#status").inner_text()
    page.locator("#run").click()
    page.locator("#status").get_by_text("The morph failed").wait_for()
    assert page.locator(".toast-body").count() == 1  # the status says it all; one toast, which closes
    page.wait_for_function("() => document.querySelectorAll('.toast-body').length == 0", timeout=15_000)


def test_the_atlas_tab_draws_the_distances_frames_and_plane_and_a_frame_opens_its_morph(page, url, tmp_path):
    page.goto(url)
    page.locator("#top5").get_by_text("3", exact=True).first.wait_for()
    page.get_by_role("tab", name="Atlas").click()
    page.locator("#atlas-run").click()
    page.locator("#atlas-status").get_by_text("nearest").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#atlas-chart svg g.mark-rect path').length >= 9")
    assert page.locator("#atlas-frames img").count() == 9
    page.locator("#atlas-plane img").wait_for()
    assert page.locator("#atlas-plane img").evaluate("img => img.naturalWidth") > 400
    page.screenshot(path=str(screenshot_dir(tmp_path) / "app-atlas.png"), full_page=True)
    caption = page.locator("#atlas-frames .caption-label").nth(1).inner_text()
    label = caption.split(":")[0].strip()
    page.locator("#atlas-frames img").nth(1).click()
    page.locator("#video").wait_for(state="attached")
    page.wait_for_function(
        "label => document.querySelector('#target input').value === label", arg=label, timeout=10_000
    )
    assert page.get_by_role("tab", name="Morph").get_attribute("aria-selected") == "true"
