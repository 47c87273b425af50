"""`cardio demo | embed | project | evaluate | weights | report`: the pipeline steps from the command line.

`embed`, `project` and `evaluate` run in the foreground by default (they are what a job
would run); `--background` queues them as a job instead. `demo` always runs as a job.
"""
from __future__ import annotations

from pathlib import Path

from cardio_cli.common import open_store


def _submit(ws, spec: dict, wait: bool) -> int:
    from cardio_cli.jobs import end_message, watch
    from jobs.runner import LocalRunner
    runner = LocalRunner(ws)
    job_id = runner.submit(spec)
    print(job_id)
    if wait:
        watch(runner, job_id, follow=True)
        return end_message(runner, job_id)
    return 0


def cmd_demo(args, ws) -> int:
    params = {"size": args.size}
    return _submit(ws, {"kind": "demo", "device": args.device, "params": params,
                        "name": f"demo chain ({args.size})"}, wait=not args.no_wait)


def _steps(kind: str, args, ws) -> int:
    if args.background:
        return _submit(ws, {"kind": kind, "device": getattr(args, "device", "auto"),
                            "params": {"weights_ids": args.weights}}, wait=False)
    store = open_store(ws)
    from cardio_core.catalog import get_weights
    from cardio_core.analysis.projections import configure_numba_cache
    configure_numba_cache(ws.cache_dir)
    for wid in args.weights:
        w = get_weights(store, wid)
        if kind == "embed":
            from cardio_core.analysis.embeddings import embed_weights
            counts = embed_weights(store, wid, device=args.device)
            print(f"{wid}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        elif kind == "project":
            from cardio_core.analysis.projections import MODALITY_VIEWS, project_weights
            for view in MODALITY_VIEWS[w["modality"]]:
                print(f"{wid}: {view} -> {project_weights(store, wid, view, modality=w['modality'])}")
        else:
            from cardio_core.analysis.evaluate import evaluate_cmr, evaluate_ecg
            rows = (evaluate_ecg if w["modality"] == "ecg" else evaluate_cmr)(store, wid)
            print(f"{wid}: {len(rows.rows)} metrics stored")
    return 0


def cmd_weights(args, ws) -> int:
    store = open_store(ws)
    if args.action == "scan":
        from cardio_core.catalog import scan_weights_dir
        found = scan_weights_dir(store, ws)
        print(f"registered {len(found)} new file(s) from {ws.weights_dir}: {', '.join(found) or '-'}")
        problems = store.query("SELECT file, problem FROM problems WHERE stage = 'weights' ORDER BY problem_id")
        for file, problem in problems[-10:]:
            print(f"  problem: {file}: {problem}")
        return 0
    df = store.query_df("SELECT weights_id, modality, kind, name, parent_weights_id AS parent FROM weights "
                        "ORDER BY created_at")
    print(df.to_string(index=False) if len(df) else "no weights registered (cardio weights scan)")
    return 0


def cmd_report(args, ws) -> int:
    from cardio_core.report import write_report
    out = Path(args.out) if args.out else ws.ensure().runs_dir / args.run / "report"
    paths = write_report(open_store(ws), args.run, out)
    print(f"report of {args.run} written to {out}")
    for p in paths:
        print(f"  {p.name}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("demo", help="run the whole demo chain as a background job and follow it")
    s.add_argument("--size", default="default", choices=["tiny", "default"])
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--no-wait", action="store_true", help="queue it and return")
    s.set_defaults(func=cmd_demo)
    for kind, text in (("embed", "compute embeddings of the evaluation sets for registered weights"),
                       ("project", "compute the UMAP projections of registered weights"),
                       ("evaluate", "compute the metrics of registered weights")):
        s = sub.add_parser(kind, help=text)
        s.add_argument("weights", nargs="+", help="weights ids (cardio weights list)")
        s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        s.add_argument("--background", action="store_true", help="queue as a job instead of running here")
        s.set_defaults(func=lambda a, w, k=("metrics" if kind == "evaluate" else kind): _steps(k, a, w))
    s = sub.add_parser("weights", help="list registered weights, or scan <workspace>/weights/ for new files")
    s.add_argument("action", nargs="?", default="list", choices=["list", "scan"])
    s.set_defaults(func=cmd_weights)
    s = sub.add_parser("report", help="write a run's thesis-style tables as Markdown and CSV")
    s.add_argument("run", help="run id (`cardio status` lists the runs)")
    s.add_argument("--out", help="output folder (default: <workspace>/runs/RUN/report/)")
    s.set_defaults(func=cmd_report)
