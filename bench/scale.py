"""A full-size cohort measured end to end: Chapman-sized (45,152 records) and PTB-XL-sized (21,799) synthetic
datasets in the real formats, each stage timed with its records/s and peak resident memory.

`python -m bench scale [--fraction=1.0] [--root=DIR] [--keep] [--repeats=3] [--no-browser]`

Stages, each in its own process (its peak RSS is the sum over its process tree, sampled every 0.2 s):
generation (`cardio demo-data --size full`), ingest of Chapman and of PTB-XL (2 workers), embedding of the
Chapman test and PTB-XL display splits (the ECG encoder on this machine's device), the joint UMAP of both
(the cross-domain view), the metrics pass, the store's size on disk, and Explore in headless Chromium with
a layout of every Chapman record plus the PTB-XL overlay (coordinates seeded per rhythm label: the page's
cost is in the points, not their values), a sidebar click in an open session, median of --repeats.

Goals (issue 14): no stage above 8 GB RSS; full Chapman ingest within 5 minutes on 2 cores; Explore within
2 s in an open session. `--fraction 0.25` runs a quarter-size cohort where the full one does not fit the
time available; the table then says so, and per-record rates are what extrapolates.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GB = 1024 ** 3
RSS_GOAL_GB = 8.0
INGEST_GOAL_S = 300.0       # full Chapman on 2 cores
EXPLORE_GOAL_S = 2.0        # in an open session
EXPLORE_WEIGHTS = "bench-scale-explore"


def full_sizes(fraction: float) -> dict[str, int]:
    from cardio_core.demo.generate import SIZES
    return {k: max(10, int(round(v * fraction))) if k != "acdc" else 10 for k, v in SIZES["full"].items()}


# -- memory of a process tree ------------------------------------------------------------------------

def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
        todo += children.get(p, [])
    return total


def run_stage(name: str, root: Path, fraction: float, timeout: float) -> dict:
    """One stage in a child process: wall time, peak RSS of its tree and what it reports."""
    cmd = [sys.executable, "-m", "bench.scale", "--stage", name, f"--root={root}", f"--fraction={fraction}"]
    env = {**os.environ, "CARDIO_WORKSPACE": str(root / "ws"), "NUMBA_CACHE_DIR": str(root / "ws" / "cache" / "numba")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"stage {name} failed (exit code {proc.returncode}): {err[-3000:]}")
    return {"stage": name, "wall_s": wall, "peak_rss_gb": peak[0] / GB, **json.loads(lines[-1][len("RESULT "):])}


# -- the stages (each runs in its own process) --------------------------------------------------------

def _store():
    from cardio_core.config import Workspace
    from cardio_core.store import Store
    ws = Workspace.from_env().ensure()
    return ws, Store(ws.db_path)


def stage_generate(root: Path, fraction: float) -> dict:
    from cardio_core.demo.generate import generate_demo_datasets
    info = generate_demo_datasets(root / "data", size=full_sizes(fraction), seed=0, workers=2)
    return {"records": info["n_chapman"] + info["n_ptbxl"] + info["n_acdc"],
            "note": f"{info['n_chapman']:,} Chapman + {info['n_ptbxl']:,} PTB-XL + {info['n_acdc']} ACDC"}


def _ingest(root: Path, dataset: str) -> dict:
    from cardio_core.data.ingest import ingest_dataset
    ws, store = _store()
    t = time.perf_counter()
    ingest_dataset(store, ws, dataset, root / "data" / dataset, is_demo=True, workers=2)
    n = store.scalar("SELECT count(*) FROM records WHERE dataset_id = ?", [dataset])
    return {"records": n, "inner_s": time.perf_counter() - t}


def stage_ingest_chapman(root: Path, fraction: float) -> dict:
    return _ingest(root, "chapman")


def stage_ingest_ptbxl(root: Path, fraction: float) -> dict:
    return _ingest(root, "ptbxl")


def stage_embed(root: Path, fraction: float) -> dict:
    from cardio_core.analysis.embeddings import embed_weights
    from cardio_core.catalog import default_parent
    from cardio_core.models.device import resolve_device
    ws, store = _store()
    wid = default_parent(store, "ecg")
    device = resolve_device("auto")
    t = time.perf_counter()
    counts = embed_weights(store, wid, device=device)
    n = store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ?", [wid])
    return {"records": n, "inner_s": time.perf_counter() - t, "note": f"{wid} on {device}: {counts}"}


def stage_umap(root: Path, fraction: float) -> dict:
    from cardio_core.analysis.projections import configure_numba_cache, project_weights
    from cardio_core.catalog import default_parent
    ws, store = _store()
    configure_numba_cache(ws.cache_dir)
    wid = default_parent(store, "ecg")
    t = time.perf_counter()
    pid = project_weights(store, wid, "cross_domain", modality="ecg")
    n = store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ?", [pid])
    return {"records": n, "inner_s": time.perf_counter() - t, "note": "Chapman test + PTB-XL display, jointly"}


def stage_metrics(root: Path, fraction: float) -> dict:
    from cardio_core.analysis.evaluate import evaluate_ecg
    from cardio_core.catalog import default_parent
    ws, store = _store()
    wid = default_parent(store, "ecg")
    t = time.perf_counter()
    evaluate_ecg(store, wid, seed=0)
    n = store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ? AND dataset_id = 'chapman'", [wid])
    rows = store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ?", [wid])
    return {"records": n, "inner_s": time.perf_counter() - t, "note": f"{rows} metric rows"}


def stage_explore(root: Path, fraction: float) -> dict:
    """A layout of every Chapman record + the PTB-XL display overlay, then Explore in headless Chromium."""
    import numpy as np
    import pandas as pd
    from cardio_core.catalog import register_weights
    from cardio_core.queries import projection_points
    ws, store = _store()
    recs = store.query_df("SELECT r.dataset_id, r.record_id FROM records r WHERE (r.dataset_id = 'chapman') OR "
                          "(r.dataset_id = 'ptbxl' AND r.split = 'display') ORDER BY 1, 2")
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (12, 2))
    which = rng.integers(0, len(centres), len(recs))
    xy = centres[which] + rng.normal(0, 1.5, (len(recs), 2))
    register_weights(store, weights_id=EXPLORE_WEIGHTS, modality="ecg", name="bench: every Chapman record",
                     kind="random", path=None)
    pid = f"{EXPLORE_WEIGHTS}:cross_domain"
    points = pd.DataFrame({"projection_id": pid, "dataset_id": recs["dataset_id"], "record_id": recs["record_id"],
                           "x": xy[:, 0], "y": xy[:, 1]})
    with store.write() as con:
        con.execute("DELETE FROM projection_points WHERE projection_id = ?", [pid])
        con.execute("DELETE FROM projections WHERE projection_id = ?", [pid])
        con.execute("INSERT INTO projections (projection_id, weights_id, view, method, params, aligned_to) "
                    "VALUES (?, ?, 'cross_domain', 'umap', '{}', NULL)", [pid, EXPLORE_WEIGHTS])
        con.register("_pts", points)
        con.execute("INSERT INTO projection_points SELECT projection_id, dataset_id, record_id, x, y FROM _pts")
        con.unregister("_pts")
    t = time.perf_counter()
    n = len(projection_points(store, EXPLORE_WEIGHTS, "cross_domain"))
    query_s = time.perf_counter() - t
    out = {"records": n, "query_s": query_s}
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if os.environ.get("BENCH_SCALE_NO_BROWSER") or not Path(chromium).exists():
        return {**out, "note": f"query {query_s:.2f} s; browser skipped"}
    from app.browser_testing import RunningApp
    from bench.app import _drawn, _idle
    from playwright.sync_api import sync_playwright
    repeats = int(os.environ.get("BENCH_SCALE_REPEATS", "3"))
    with RunningApp(ws.root) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        t = time.perf_counter()
        page.goto(f"{url}/explore?w={EXPLORE_WEIGHTS}&view=cross_domain")
        page.wait_for_function(_drawn(n), timeout=300_000, polling=20)
        first = time.perf_counter() - t
        clicks = []
        for _ in range(repeats):
            page.get_by_role("link", name="Metrics").first.click()
            page.get_by_role("heading", name="Metrics").first.wait_for(timeout=120_000)
            page.wait_for_function(_idle(), timeout=120_000, polling=20)
            time.sleep(0.3)
            t = time.perf_counter()
            page.get_by_role("link", name="Explore").first.click()
            page.wait_for_function(_drawn(n), timeout=300_000, polling=20)
            clicks.append(time.perf_counter() - t)
        browser.close()
    clicks.sort()
    return {**out, "inner_s": clicks[len(clicks) // 2], "first_load_s": first,
            "note": f"first load {first:.2f} s; sidebar clicks {', '.join(f'{c:.2f}' for c in clicks)} s; "
                    f"query {query_s:.2f} s"}


STAGES = {"generate": stage_generate, "ingest_chapman": stage_ingest_chapman, "ingest_ptbxl": stage_ingest_ptbxl,
          "embed": stage_embed, "umap": stage_umap, "metrics": stage_metrics, "explore": stage_explore}


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the full sizes (1.0 = 45,152 + 21,799)")
    parser.add_argument("--root", help="work folder (default: a new temporary one, removed unless --keep)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds allowed per stage")
    parser.add_argument("--stage", choices=tuple(STAGES), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if not 0 < args.fraction <= 1:
        raise SystemExit(f"bench scale: --fraction must be in (0, 1], got {args.fraction}")
    if args.stage:
        res = STAGES[args.stage](Path(args.root), args.fraction)
        print("RESULT " + json.dumps(res), flush=True)
        return []

    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="cardio-bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.no_browser:
        os.environ["BENCH_SCALE_NO_BROWSER"] = "1"
    os.environ["BENCH_SCALE_REPEATS"] = str(args.repeats)
    sizes = full_sizes(args.fraction)
    print(f"bench scale: {sizes['chapman']:,} Chapman + {sizes['ptbxl']:,} PTB-XL records "
          f"(fraction {args.fraction} of the full sizes) in {root}; {os.cpu_count()} CPUs", flush=True)
    results = []
    try:
        for name in STAGES:
            r = run_stage(name, root, args.fraction, args.timeout)
            results.append(r)
            print(f"  {name}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gb']:.2f} GB; {r.get('note', '')}", flush=True)
        db = root / "ws" / "cardioscope.duckdb"
        store_row = {"stage": "store", "wall_s": float("nan"), "peak_rss_gb": float("nan"),
                     "records": sizes["chapman"] + sizes["ptbxl"],
                     "db_gb": db.stat().st_size / GB, "arrays_gb": _dir_bytes(root / "ws" / "data" / "preprocessed") / GB,
                     "raw_gb": _dir_bytes(root / "data") / GB}
        results.append(store_row)
    finally:
        if not args.keep and not args.root:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n| stage | records | wall s | records/s | peak RSS GB | goal |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if r["stage"] == "store":
            print(f"| store on disk | {r['records']:,} | | | | DuckDB {r['db_gb']:.2f} GB, preprocessed arrays "
                  f"{r['arrays_gb']:.2f} GB (raw files {r['raw_gb']:.2f} GB) |")
            continue
        timed = r.get("inner_s", r["wall_s"])
        rate = r["records"] / timed if timed else float("nan")
        goal = f"RSS <= {RSS_GOAL_GB:.0f} GB: {'met' if r['peak_rss_gb'] <= RSS_GOAL_GB else 'MISSED'}"
        if r["stage"] == "ingest_chapman":
            full_s = timed * 45_152 / max(r["records"], 1)
            goal += (f"; full Chapman {'measured' if args.fraction == 1 else 'extrapolated'} {full_s:.0f} s "
                     f"(<= {INGEST_GOAL_S:.0f} s: {'met' if full_s <= INGEST_GOAL_S else 'MISSED'})")
        if r["stage"] == "explore" and "first_load_s" in r:
            goal += f"; open session {timed:.2f} s (<= {EXPLORE_GOAL_S:.0f} s: " \
                    f"{'met' if timed <= EXPLORE_GOAL_S else 'MISSED'})"
        print(f"| {r['stage']} | {r['records']:,} | {r['wall_s']:.1f} | {rate:,.0f} | {r['peak_rss_gb']:.2f} | {goal} |")
    return results


if __name__ == "__main__":
    main()
