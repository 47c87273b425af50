"""App benchmark: Explore with 50k points in headless Chromium.

Measures (1) the Explore render time with 50,000 projection points, from navigation to the
WebGL scatter being drawn, three ways (a new tab in an empty browser, a new tab in a warm
browser, a sidebar click in an open session), each beside the same page with a 10-point
scatter so the cost of the points themselves is visible; (2) the warm checkpoint switch time,
from choosing another checkpoint to the new scatter being drawn; (3) the bytes the browser
receives over Streamlit's websocket for one Explore render; plus the server-side query and
figure-building times without a browser. Goals (issue 5): render <= 2 s, warm
switch <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_workspace(root: Path, n_points: int):
    from app.testing import BASELINE_ID, checkpoint_id, fill_many_points, fill_store
    store = fill_store(root, n_chapman=60, n_ptbxl=20, n_acdc=10, with_jobs=False, with_arrays=False)
    fill_many_points(store, [BASELINE_ID, checkpoint_id(5), checkpoint_id(10)], n_points)
    return store, [checkpoint_id(10), checkpoint_id(5), BASELINE_ID]


def server_side(store, weights_ids) -> dict:
    from app.figures import scatter_figure
    from cardio_core import queries
    t = time.perf_counter()
    pts = queries.projection_points(store, weights_ids[0], "chapman_test")
    query_s = time.perf_counter() - t
    t = time.perf_counter()
    fig = scatter_figure(pts, "rhythm")
    figure_s = time.perf_counter() - t
    t = time.perf_counter()
    size = len(fig.to_json())
    json_s = time.perf_counter() - t
    return {"n_points": len(pts), "query_s": query_s, "figure_s": figure_s, "json_s": json_s, "json_bytes": size}


def _drawn(n_points: int) -> str:
    """JS predicate: a Plotly chart holding at least n_points points is drawn and the script run is over.

    Counting points tells the Explore scatter from any chart the previous page left behind."""
    return ("() => { const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData &&"
            f" g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) >= {n_points});"
            " return !!(gd && gd._fullLayout && gd.querySelector('canvas') &&"
            " !document.querySelector('[data-testid=\"stStatusWidget\"]')); }")


def _idle() -> str:
    """JS predicate: the script run is over. Streamlit's own state on the app root says so ('notRunning'), and no
    element is still a loading skeleton: without these, a page counted as loaded while its first run had not
    started (the status widget is not shown yet then), so a page could be timed before it had drawn anything."""
    return ("() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
            " return !!a && a.getAttribute('data-test-script-state') === 'notRunning' &&"
            " !document.querySelector('[data-testid=\"stStatusWidget\"]') &&"
            " !document.querySelector('[data-testid=\"stSkeleton\"]'); }")


def browser_side(url: str, weights_ids, chromium: str, repeats: int, n_points: int) -> dict:
    """Explore reached three ways, each beside the same page with a 10-point scatter (ACDC view):
    a new tab in a browser with an empty cache, a new tab in a warm browser, and a click in the
    sidebar of an open session (Streamlit's own client-side message cache then applies)."""
    from playwright.sync_api import sync_playwright

    from app.testing import CMR_BASELINE_ID

    received = {"bytes": 0}

    def on_ws(ws):
        ws.on("framereceived", lambda payload: received.__setitem__("bytes", received["bytes"] + len(payload)))

    big = f"{url}/explore?w={weights_ids[0]}"
    tiny = f"{url}/explore?w={CMR_BASELINE_ID}&view=acdc"
    out = {k: [] for k in ("cold_tab", "cold_tab_tiny", "warm_tab", "warm_tab_tiny", "in_session", "in_session_tiny",
                           "switch")}

    def load(page, target, n):
        t = time.perf_counter()
        page.goto(target)
        page.wait_for_function(_drawn(n), timeout=120_000, polling=20)
        return time.perf_counter() - t

    def navigate(page, n):
        # Leave Explore for Metrics, then come back through the sidebar.
        page.get_by_role("link", name="Metrics").first.click()
        page.get_by_role("heading", name="Metrics").first.wait_for(timeout=60_000)
        page.wait_for_function(_idle(), timeout=60_000, polling=20)
        time.sleep(0.3)
        t = time.perf_counter()
        page.get_by_role("link", name="Explore").first.click()
        page.wait_for_function(_drawn(n), timeout=120_000, polling=20)
        return time.perf_counter() - t

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        # The first load fills the server's query cache; it is reported, not counted as warm.
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.on("websocket", on_ws)
        out["first_load_s"] = load(page, big, n_points)
        out["payload_bytes"] = received["bytes"]
        load(page, tiny, 10)
        ctx.close()
        for _ in range(repeats):
            for target, n, key in ((big, n_points, "cold_tab"), (tiny, 10, "cold_tab_tiny")):
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                out[key].append(load(ctx.new_page(), target, n))
                ctx.close()
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        load(ctx.new_page(), big, n_points)  # warms this browser's cache
        for _ in range(repeats):
            for target, n, key in ((big, n_points, "warm_tab"), (tiny, 10, "warm_tab_tiny")):
                page = ctx.new_page()
                out[key].append(load(page, target, n))
                page.close()
        for target, n, key in ((big, n_points, "in_session"), (tiny, 10, "in_session_tiny")):
            page = ctx.new_page()
            load(page, target, n)
            for _ in range(repeats):
                out[key].append(navigate(page, n))
            page.close()
        # Warm checkpoint switches: every checkpoint was loaded once already.
        page = ctx.new_page()
        load(page, big, n_points)
        for target in weights_ids[1:] + weights_ids[:1] + weights_ids[1:]:
            # The first drawn x value differs between checkpoints: a re-render of the old
            # figure (Streamlit redraws on any rerun) does not count as switched.
            page.evaluate("window.__oldx = document.querySelector('.js-plotly-plot')._fullData[0].x[0]")
            combo = page.locator('[data-testid="stSelectbox"]').filter(has_text="Weights / checkpoint")
            combo.locator("input").first.click()
            page.get_by_role("option").first.wait_for(timeout=10_000)
            name = "epoch 5" if target.endswith("e005") else "epoch 10" if target.endswith("e010") else "pre-trained"
            option = page.get_by_role("option").filter(has_text=name).first
            t = time.perf_counter()
            option.click()
            page.wait_for_function("() => { const gd = document.querySelector('.js-plotly-plot');"
                                   " return gd && gd._fullData && gd._fullData[0].x[0] !== window.__oldx &&"
                                   " !document.querySelector('[data-testid=\"stStatusWidget\"]'); }",
                                   timeout=60_000, polling=20)
            out["switch"].append(time.perf_counter() - t)
        page.close()
        ctx.close()
        browser.close()
    return out


PAGES = {"overview": ("", "CardioScope"), "explore": ("explore", "Explore"), "compare": ("compare", "Compare"),
         "subclusters": ("subclusters", "Sub-clusters"), "metrics": ("metrics", "Metrics"), "jobs": ("jobs", "Jobs"),
         "methods": ("methods", "Methods")}


def pages_side(big_url: str, tiny_url: str, chromium: str, repeats: int) -> dict:
    """Every page opened in a new tab of a warm browser, and a box-selection rerun on Explore and on Compare,
    each on the 50k-point workspace and on the same workspace with 10 points, measured in the same run."""
    from playwright.sync_api import sync_playwright

    from app.browser_testing import box_select

    def open_page(page, url, title):
        t = time.perf_counter()
        page.goto(url)
        page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
        page.wait_for_function(_idle(), timeout=120_000, polling=20)
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullLayout)",
                               timeout=120_000, polling=20)
        return time.perf_counter() - t

    def selection(page, url, title, text):
        open_page(page, url, title)
        t = time.perf_counter()
        box_select(page, page.locator(".js-plotly-plot").first, 0.7, 0.7)
        page.get_by_text(text).first.wait_for(timeout=120_000)
        page.wait_for_function(_idle(), timeout=120_000, polling=20)
        return time.perf_counter() - t

    import re
    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        for name, (path, title) in PAGES.items():
            for which, base in (("big", big_url), ("tiny", tiny_url)):
                open_page(ctx.new_page(), f"{base}/{path}", title)    # warms the server's caches and the browser
                runs = []
                for _ in range(repeats):
                    page = ctx.new_page()
                    runs.append(open_page(page, f"{base}/{path}", title))
                    page.close()
                out[(name, which)] = runs
        for name, path, title, text in (("explore selection", "explore", "Explore", re.compile(r"\d+ selected of")),
                                        ("compare selection", "compare", "Compare",
                                         re.compile(r"\d+ records selected"))):
            for which, base in (("big", big_url), ("tiny", tiny_url)):
                runs = []
                for _ in range(repeats):
                    page = ctx.new_page()
                    runs.append(selection(page, f"{base}/{path}", title, text))
                    page.close()
                out[(name, which)] = runs
        browser.close()
    return out


def _median(values) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--pages", action="store_true",
                        help="every page and the selection reruns, beside a 10-point workspace (goal: +0.5 s at most)")
    args = parser.parse_args(argv)
    if args.pages:
        return main_pages(args)
    from app.browser_testing import RunningApp

    with tempfile.TemporaryDirectory(prefix="cardio-bench-app-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        store, weights_ids = build_workspace(root, args.points)
        print(f"fixture workspace with {args.points:,} points per checkpoint x 3: {time.perf_counter() - t:.1f} s")
        s = server_side(store, weights_ids)
        print(f"server side: query {s['query_s'] * 1000:.0f} ms, figure {s['figure_s'] * 1000:.0f} ms, "
              f"to_json {s['json_s'] * 1000:.0f} ms, figure JSON {s['json_bytes'] / 1e6:.2f} MB "
              f"({s['n_points']:,} points)")
        if not Path(args.chromium).exists():
            print(f"chromium not found at {args.chromium}: browser timings skipped")
            return 0
        with RunningApp(root) as url:
            b = browser_side(url, weights_ids, args.chromium, args.repeats, s["n_points"])
        print(f"Explore, {args.points:,} points vs the same page with a 10-point scatter (median of {args.repeats}):")
        for key, what in (("cold_tab", "new tab, empty browser cache"), ("warm_tab", "new tab, warm browser cache"),
                          ("in_session", "sidebar click in an open session")):
            big, tiny = _median(b[key]), _median(b[key + "_tiny"])
            print(f"  {what:34s} {big:5.2f} s vs {tiny:5.2f} s: the 50k points cost {big - tiny:+.2f} s "
                  f"(runs: {', '.join(f'{v:.2f}' for v in b[key])}) [goal <= 2 s]")
        print(f"  first load (server query cache cold): {b['first_load_s']:.2f} s")
        print(f"warm checkpoint switch: median {_median(b['switch']):.2f} s "
              f"(runs: {', '.join(f'{v:.2f}' for v in b['switch'])}) [goal <= 1 s]")
        print(f"payload received by the browser for one Explore render: {b['payload_bytes'] / 1e6:.2f} MB")
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
              "(timings scale with it)")
    return 0


def main_pages(args) -> int:
    from app.browser_testing import RunningApp
    with tempfile.TemporaryDirectory(prefix="cardio-bench-pages-") as tmp:
        big_root, tiny_root = Path(tmp) / "big", Path(tmp) / "tiny"
        build_workspace(big_root, args.points)
        build_workspace(tiny_root, 10)
        if not Path(args.chromium).exists():
            print(f"chromium not found at {args.chromium}: browser timings skipped")
            return 0
        with RunningApp(big_root) as big, RunningApp(tiny_root) as tiny:
            out = pages_side(big, tiny, args.chromium, args.repeats)
    print(f"Every page in a new tab of a warm browser, {args.points:,} points vs 10 points "
          f"(median of {args.repeats}; goal: the data adds at most 0.5 s):")
    names = [*PAGES, "explore selection", "compare selection"]
    for name in names:
        big, tiny = _median(out[(name, "big")]), _median(out[(name, "tiny")])
        verdict = "ok" if big - tiny <= 0.5 else "over"
        print(f"  {name:18s} {big:5.2f} s vs {tiny:5.2f} s: {big - tiny:+.2f} s [{verdict}]")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
