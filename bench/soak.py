"""A bounded load / soak run of the store: concurrent jobs, the app's reads and an outside DuckDB handle.

`python -m bench soak [--seconds=180] [--writers=3] [--readers=2] [--outside-hold=0.3] [--seed=0]`

For `--seconds`: `--writers` job processes each register checkpoints and replace their metrics (as a
fine-tune's checkpoints do) and update their job row, each write one transaction; `--readers` threads
run the app's page queries; one process outside the store's locking opens the database read-only with
duckdb (as the CLI would), holds it `--outside-hold` s and closes it, over and over.

Reports committed writes and the rows found afterwards (lost rows = committed - found), reads, read
latency, unhandled errors (any error a caller would see, lock conflicts included), StoreBusy timeouts and
the outside-handle conflicts waited out. Passing: 0 unhandled lock errors, 0 lost rows.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from cardio_core.labels import CLASSES


def _writer(db: str, worker: int, seconds: float, seed: int, out: mp.Queue, start) -> None:
    from cardio_core.analysis.metric_rows import store_classification
    from cardio_core.pipeline.runs import register_checkpoint
    from cardio_core.store import Store, StoreBusy
    store = Store(db)  # a job's store: the default lock timeout (60 s)
    rng = np.random.default_rng(seed + worker)
    job = f"soak-job-{worker}"
    store.execute("INSERT INTO jobs (job_id, kind, spec, status) VALUES (?, 'finetune', '{}', 'running')", [job])
    committed, errors, busy, epoch = 0, [], 0, 0
    start.wait()  # every process imported and ready: the load starts together
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        epoch += 1
        wid = f"{job}-e{epoch:04d}"
        try:
            register_checkpoint(store, weights_id=wid, run_id=job, job_id=job, epoch=epoch, step=epoch * 10,
                                fold=None, path=None, modality="ecg", parent_id="soak-base", name=wid,
                                metrics={"val/loss": float(rng.random())}, config={"soak": True})
            y = (rng.random((64, len(CLASSES))) < 0.3).astype(int)
            store_classification(store, wid, y, np.clip(y * 0.5 + rng.random(y.shape) * 0.6, 0, 1), CLASSES)
            store.execute("UPDATE jobs SET last_checkpoint_epoch = ? WHERE job_id = ?", [epoch, job])
            committed += 1
        except StoreBusy:
            busy += 1
        except Exception as exc:  # what a job would die of
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put({"worker": worker, "committed": committed, "errors": errors, "busy": busy,
             "conflicts_waited": store.lock_conflicts_retried})


def _outside(db: str, seconds: float, hold: float, out: mp.Queue, start) -> None:
    import duckdb
    opened, refused = 0, 0
    start.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            con = duckdb.connect(db, read_only=True)
        except duckdb.IOException:
            refused += 1  # a writer had it at that moment: the CLI user would simply try again
            time.sleep(0.05)
            continue
        opened += 1
        con.execute("SELECT count(*) FROM metrics").fetchone()
        time.sleep(hold)
        con.close()
        time.sleep(hold)
    out.put({"outside_opened": opened, "outside_refused": refused})


def _reader(store, seconds: float, stats: dict) -> None:
    from cardio_core import queries
    from cardio_core.store import StoreBusy
    from app.testing import checkpoint_id
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t = time.perf_counter()
        try:
            queries.workspace_summary(store)
            queries.list_weights(store)
            queries.projection_points(store, checkpoint_id(10), "chapman_test")
            queries.per_class_table(store, checkpoint_id(10))
            stats["latency"].append(time.perf_counter() - t)
        except StoreBusy:
            stats["busy"] += 1
        except Exception as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}")


def soak(seconds: float = 180, writers: int = 3, readers: int = 2, outside_hold: float = 0.3, seed: int = 0,
         root: Path | None = None) -> dict:
    from app.testing import fill_store
    root = Path(root or tempfile.mkdtemp(prefix="cardio-soak-"))
    store = fill_store(root, n_chapman=300, n_ptbxl=80, n_acdc=50, seed=seed)
    store.lock_timeout = 20.0  # the app's (app/common.py)
    db = str(store.db_path)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = ctx.Barrier(writers + 2)
    procs = [ctx.Process(target=_writer, args=(db, w, seconds, seed, queue, start)) for w in range(writers)]
    procs.append(ctx.Process(target=_outside, args=(db, seconds, outside_hold, queue, start)))
    stats = {"latency": [], "errors": [], "busy": 0}
    for p in procs:
        p.start()
    start.wait(timeout=300)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=_reader, args=(store, seconds, stats)) for _ in range(readers)]
    for t in threads:
        t.start()
    results = [queue.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    wr = [r for r in results if "worker" in r]
    outside = next(r for r in results if "outside_opened" in r)
    found = {}
    for r in wr:
        job = f"soak-job-{r['worker']}"
        n_ckpt = store.scalar("SELECT count(*) FROM checkpoints WHERE run_id = ?", [job])
        n_metric_sets = store.scalar("SELECT count(DISTINCT m.weights_id) FROM metrics m JOIN checkpoints c "
                                     "USING (weights_id) WHERE c.run_id = ? GROUP BY ALL", [job]) or 0
        n_rows = store.scalar("SELECT count(*) FROM metrics m JOIN checkpoints c USING (weights_id) "
                              "WHERE c.run_id = ?", [job])
        found[job] = {"checkpoints": n_ckpt, "metric_sets": n_metric_sets, "metric_rows": n_rows}
    committed = sum(r["committed"] for r in wr)
    # a write that raised may have committed its first transactions (a checkpoint without metrics): counted
    # as found, never as lost; lost = committed units missing any of their rows
    lost = sum(max(0, r["committed"] - min(found[f"soak-job-{r['worker']}"]["checkpoints"],
                                           found[f"soak-job-{r['worker']}"]["metric_sets"])) for r in wr)
    short = sum(f["metric_rows"] != 104 * f["metric_sets"] for f in found.values())
    errors = [e for r in wr for e in r["errors"]] + stats["errors"]
    lock_errors = [e for e in errors if "lock" in e.lower()]
    lat = np.array(stats["latency"]) if stats["latency"] else np.array([np.nan])
    return {"seconds": round(elapsed, 1), "writers": writers, "readers": readers,
            "writes_committed": committed, "rows_lost": int(lost), "jobs_with_partial_metric_sets": int(short),
            "reads": len(stats["latency"]), "read_p50_ms": round(float(np.nanpercentile(lat, 50)) * 1e3, 1),
            "read_p95_ms": round(float(np.nanpercentile(lat, 95)) * 1e3, 1),
            "read_max_ms": round(float(np.nanmax(lat)) * 1e3, 1),
            "unhandled_errors": len(errors), "unhandled_lock_errors": len(lock_errors),
            "store_busy_timeouts_jobs": sum(r["busy"] for r in wr), "store_busy_timeouts_pages": stats["busy"],
            "outside_conflicts_waited": sum(r["conflicts_waited"] for r in wr) + store.lock_conflicts_retried,
            **outside, "first_errors": errors[:3]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="bench soak", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--writers", type=int, default=3)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--outside-hold", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    args, _ = p.parse_known_args(argv)
    result = soak(args.seconds, args.writers, args.readers, args.outside_hold, args.seed)
    print(json.dumps(result, indent=1))
    verdict = "PASS" if result["unhandled_lock_errors"] == 0 and result["rows_lost"] == 0 else "FAIL"
    print(f"{verdict}: {result['unhandled_lock_errors']} unhandled lock errors, {result['rows_lost']} lost rows, "
          f"{result['writes_committed']} checkpoint writes by {result['writers']} jobs, {result['reads']} page "
          f"reads (p95 {result['read_p95_ms']} ms), outside handle opened {result['outside_opened']} times "
          f"in {result['seconds']} s")
    return result


if __name__ == "__main__":
    main()
