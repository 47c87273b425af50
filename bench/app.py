"""App benchmark: Explore with 50k points in headless Chromium.

Measures (1) the Explore render time with 50,000 projection points, cold (first query) and
warm (cached), from navigation to the WebGL scatter being drawn; (2) the warm checkpoint
switch time, from choosing another checkpoint to the new scatter being drawn; (3) the bytes
the browser receives over Streamlit's websocket for one Explore render; plus the server-side
query and figure-building times without a browser. Goals (issue 5): render <= 2 s, warm
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
sys.path.insert(0, str(REPO / "tests"))


def build_workspace(root: Path, n_points: int):
    from app_fixtures import BASELINE_ID, checkpoint_id, fill_many_points, fill_store
    store = fill_store(root, n_chapman=60, n_ptbxl=20, n_acdc=10, with_jobs=False, with_arrays=False)
    fill_many_points(store, [BASELINE_ID, checkpoint_id(5), checkpoint_id(10)], n_points)
    return store, [checkpoint_id(10), checkpoint_id(5), BASELINE_ID]


def server_side(store, weights_ids) -> dict:
    from app.figures import scatter_figure
    from cardio_core import views
    t = time.perf_counter()
    pts = views.projection_points(store, weights_ids[0], "chapman_test")
    query_s = time.perf_counter() - t
    t = time.perf_counter()
    fig = scatter_figure(pts, "rhythm")
    figure_s = time.perf_counter() - t
    t = time.perf_counter()
    size = len(fig.to_json())
    json_s = time.perf_counter() - t
    return {"n_points": len(pts), "query_s": query_s, "figure_s": figure_s, "json_s": json_s, "json_bytes": size}


def browser_side(url: str, weights_ids, chromium: str, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    received = {"bytes": 0}

    def on_ws(ws):
        ws.on("framereceived", lambda payload: received.__setitem__("bytes", received["bytes"] + len(payload)))

    drawn = ("() => { const gd = document.querySelector('.js-plotly-plot');"
             " return !!(gd && gd._fullLayout && gd.querySelector('canvas') &&"
             " !document.querySelector('[data-testid=\"stStatusWidget\"]')); }")
    out = {"render_s": [], "switch_s": [], "reference_s": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for i in range(repeats + 1):  # the first load is cold (query + cache fill)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("websocket", on_ws)
            received["bytes"] = 0
            t = time.perf_counter()
            page.goto(f"{url}/explore?w={weights_ids[0]}")
            page.wait_for_function(drawn, timeout=120_000, polling=20)
            elapsed = time.perf_counter() - t
            if i == 0:
                out["cold_render_s"] = elapsed
                out["payload_bytes"] = received["bytes"]
            else:
                out["render_s"].append(elapsed)
            if i == repeats:
                # Warm checkpoint switches: every checkpoint was loaded once already.
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
                    out["switch_s"].append(time.perf_counter() - t)
            page.close()
        for _ in range(2):  # reference: a page without a scatter, same browser, same machine load
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(f"{url}/metrics")
            page.get_by_role("heading", name="Metrics").first.wait_for(timeout=60_000)
            page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000,
                                   polling=20)
            out["reference_s"].append(time.perf_counter() - t)
            page.close()
        browser.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench/app.py", description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    from app_fixtures import RunningApp

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
            b = browser_side(url, weights_ids, args.chromium, args.repeats)
        med = sorted(b["render_s"])[len(b["render_s"]) // 2] if b["render_s"] else float("nan")
        sw = sorted(b["switch_s"])[len(b["switch_s"]) // 2] if b["switch_s"] else float("nan")
        print(f"Explore render, {args.points:,} points: cold {b['cold_render_s']:.2f} s, warm median {med:.2f} s "
              f"(runs: {', '.join(f'{v:.2f}' for v in b['render_s'])}) [goal <= 2 s]")
        print(f"warm checkpoint switch: median {sw:.2f} s (runs: {', '.join(f'{v:.2f}' for v in b['switch_s'])}) "
              "[goal <= 1 s]")
        print(f"payload received by the browser for one Explore render: {b['payload_bytes'] / 1e6:.2f} MB")
        print(f"reference, Metrics page (no scatter) in the same browser: "
              f"{', '.join(f'{v:.2f}' for v in b['reference_s'])} s")
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
              "(timings scale with it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
