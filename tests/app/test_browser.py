"""The real app in headless Chromium (Playwright + Debian's /usr/bin/chromium) on the synthetic workspace.

Opens every page, checks no exception box is shown, box-selects on the Explore scatter and
reopens the selection from its URL, launches a tiny job from the Jobs form and waits for it to
progress, and saves screenshots to test-artifacts/ (look at them).
"""
import re
import shutil
import time
from pathlib import Path

import pytest

from app.browser_testing import (RunningApp, assert_no_exception, box_select, job_card_text, launch_job,
                                 settle)
from app.testing import SWEEP_ID, fill_store, write_sweep
from cardio_core.config import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PAGES = {"": "CardioScope", "explore": "Explore", "compare": "Compare", "subclusters": "Sub-clusters",
         "metrics": "Metrics", "phenotypes": "Phenotypes from the ECG", "jobs": "Jobs"}

if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (./run test installs Debian's chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-ws")
    store = fill_store(root)
    write_sweep(store, Workspace(root))
    with RunningApp(root) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1400, "height": 2400})
        yield pg
        browser.close()


def test_every_page_opens_without_exception(page, app_url):
    for path, title in PAGES.items():
        page.goto(f"{app_url}/{path}")
        settle(page, title)
        assert_no_exception(page, path or "overview")
        page.screenshot(path=str(ARTIFACTS / f"page-{path or 'overview'}.png"), full_page=True)


def test_box_selection_and_shared_link(page, app_url):
    page.goto(f"{app_url}/explore")
    settle(page, "Explore")
    box_select(page, page.locator(".js-plotly-plot").first)
    summary = page.locator('[data-testid="stMarkdownContainer"] p').filter(has_text=re.compile(r"\d+ selected of"))
    summary.first.wait_for(timeout=30_000)
    n_selected = int(summary.first.inner_text().split()[0])
    assert n_selected > 0
    page.wait_for_function("location.search.includes('sel=b')", timeout=10_000)
    shared = page.url
    assert_no_exception(page, "explore after selection")
    page.screenshot(path=str(ARTIFACTS / "explore-selection.png"), full_page=True)
    # The shared link reopens the same selection in a fresh session.
    page.goto("about:blank")
    page.goto(shared)
    settle(page, "Explore")
    page.locator('[data-testid="stMarkdownContainer"] p').filter(
        has_text=f"{n_selected} selected of").first.wait_for(timeout=30_000)


def test_launch_tiny_job_and_see_it_progress(page, app_url):
    pytest.importorskip("jobs.runner", reason="the jobs package is not importable")
    page.goto(f"{app_url}/jobs")
    settle(page, "Jobs")
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Advanced").click()
    kind = page.locator('[data-testid="stSelectbox"]').filter(has_text="Job kind")
    for _ in range(5):  # the list can miss a click that lands during a rerun
        kind.locator("input").first.click()
        try:
            page.get_by_role("option").first.wait_for(timeout=3_000)
            break
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
    options = [o.inner_text() for o in page.get_by_role("option").all()]
    if "sleep" not in options:
        pytest.skip(f"no quick job kind registered (kinds: {options})")
    page.get_by_role("option", name="sleep", exact=True).click()
    # The fine-tune form comes first; the MMCL pre-training form below it has its own Epochs.
    page.get_by_label("Epochs", exact=True).first.fill("3")
    page.get_by_label("Checkpoint every N epochs", exact=True).first.fill("1")
    job_id = launch_job(page)
    start = time.monotonic()
    seen, reloaded = "", False
    while time.monotonic() < start + 150:  # the fragment refreshes the table every 3 s
        seen = job_card_text(page, job_id)
        if "succeeded" in seen:
            break
        if not seen and not reloaded and time.monotonic() > start + 60:
            # On a loaded CI machine a rerun can be cut short; a user reloads, and the job must be there.
            page.reload()
            settle(page, "Jobs")
            reloaded = True
        page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "jobs-after-launch.png"), full_page=True)
    assert "succeeded" in seen and "100%" in seen, seen
    assert_no_exception(page, "jobs")


def test_compare_shares_a_selection_between_both_views(page, app_url):
    page.goto(f"{app_url}/compare")
    settle(page, "Compare")
    left = page.locator(".js-plotly-plot").first
    box_select(page, left, 0.7, 0.7)
    caption = page.get_by_text(re.compile(r"\d+ records selected; ringed in the other view"))
    caption.first.wait_for(timeout=30_000)
    assert int(caption.first.inner_text().split()[0]) > 0
    # The right chart carries the ring trace of the shared selection; the left one, drawn on, keeps plotly's own
    # selection (selected points marked, the rest dimmed) and is not redrawn with rings.
    page.wait_for_function("(() => { const [l, r] = Array.from(document.querySelectorAll('.js-plotly-plot'));"
                           " return r.data && r.data.some(t => t.name === 'selected') &&"
                           " !l.data.some(t => t.name === 'selected') &&"
                           " l.data.some(t => t.selectedpoints && t.selectedpoints.length > 0); })()",
                           timeout=30_000)
    assert_no_exception(page, "compare after selection")
    page.screenshot(path=str(ARTIFACTS / "compare-selection.png"), full_page=True)


def test_sweep_view_draws_the_label_efficiency_curve(page, app_url):
    page.goto(f"{app_url}/jobs?sweep={SWEEP_ID}")
    settle(page, "Jobs")
    caption = page.get_by_text("Student t over seeds").first
    caption.wait_for(timeout=30_000)
    chart = page.locator(".js-plotly-plot").filter(has_text="training fraction").first
    chart.wait_for(timeout=30_000)
    chart.scroll_into_view_if_needed()
    assert chart.locator("text", has_text="100 %").count() >= 1
    assert page.get_by_text("of 9 jobs").first.is_visible()
    assert_no_exception(page, "jobs sweep")
    page.screenshot(path=str(ARTIFACTS / "jobs-sweep.png"))
