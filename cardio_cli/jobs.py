"""`cardio jobs ...`: submit, watch, cancel and resume background jobs (and `watch`, used by other commands).

Every command runs one scheduler step first, so the queue moves even without the app or
`cardio jobs daemon` running.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cardio_core.config import Workspace

from jobs.progress import progress_text, read_progress
from jobs.runner import FINAL, STATUSES, LocalRunner
from jobs.spec import JobSpec, SpecError, apply_assignments


def _runner(args, ws: Workspace) -> LocalRunner:
    return LocalRunner(ws, max_concurrent=getattr(args, "max_concurrent", None))


def _spec_from_args(args) -> JobSpec:
    if args.spec_file:
        spec = JobSpec.from_file(args.spec_file)
        data = spec.to_dict()
        if args.kind:
            data["kind"] = args.kind
    elif args.kind:
        data = {"kind": args.kind}
    else:
        raise SpecError("spec", "give a spec file (.json/.toml) or --kind")
    if getattr(args, "devices", None) is not None:
        data["devices"] = args.devices
    if args.set:
        data = apply_assignments(data, args.set)
        return JobSpec.from_dict(data, args.spec_file)
    return JobSpec.from_dict(data, args.spec_file)


def _fmt_progress(progress: dict | None) -> str:
    if not progress:
        return "no progress reported yet"
    parts = [progress_text(progress, status=progress.get("status"))]
    if progress.get("eta_s") is not None:
        parts.append(f"ETA {progress['eta_s']:.0f} s")
    if progress.get("metrics"):
        parts.append(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in progress["metrics"].items()))
    return ", ".join(parts) or json.dumps(progress)


def watch(runner: LocalRunner, job_id: str, follow: bool = True, interval: float = 0.5) -> str:
    """Show the job's progress as a tqdm bar; with follow, until it ends. Returns its status."""
    from tqdm import tqdm

    bar = None
    while True:
        runner.poll()
        status = runner.status(job_id)
        progress = read_progress(runner.job_dir(job_id)) or {}
        total = progress.get("total_epochs") or progress.get("total_steps")
        done = progress.get("epoch") if progress.get("total_epochs") else progress.get("step")
        if bar is None:
            # No rate: progress arrives in jumps (and from before this command started).
            bar = tqdm(total=total, desc=job_id, file=sys.stderr, leave=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}{postfix}]")
        bar.unit = "epochs" if progress.get("total_epochs") else "steps"
        if total and bar.total != total:
            bar.total = total
        bar.n = done or 0
        postfix = {"status": status}
        if progress.get("message"):
            postfix["now"] = str(progress["message"])[:60]
        postfix.update({k: v for k, v in (progress.get("metrics") or {}).items()})
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()
        if not follow or status in FINAL:
            bar.close()
            return status
        time.sleep(interval)


def end_message(runner: LocalRunner, job_id: str) -> int:
    """Print how the job ended; exit code 0 if it succeeded."""
    row = runner.show(job_id)
    print(f"{job_id}: {row['status']}" + (f": {row['error']}" if row.get("error") else ""))
    return 0 if row["status"] == "succeeded" else 1


# -- commands ----------------------------------------------------------------------------

def cmd_submit(args, ws: Workspace) -> int:
    runner = _runner(args, ws)
    job_id = runner.submit(_spec_from_args(args))
    print(job_id)
    if args.wait:
        watch(runner, job_id)
        return end_message(runner, job_id)
    return 0


def cmd_list(args, ws: Workspace) -> int:
    runner = _runner(args, ws)
    runner.poll()
    df = runner.list(status=args.status, limit=args.limit)
    if df.empty:
        print("no jobs")
        return 0
    # compact: one line per job, the progress in the words the app uses (jobs.progress.progress_text)
    df["progress"] = [progress_text(read_progress(runner.job_dir(j)), status=s) if s != "queued" else ""
                      for j, s in zip(df["job_id"], df["status"])]
    df["created"] = [c.strftime("%m-%d %H:%M") if hasattr(c, "strftime") else str(c) for c in df["created_at"]]
    compact = df[["job_id", "kind", "status", "progress", "created"]]
    print(compact.to_string(index=False, max_colwidth=60))
    return 0


def cmd_show(args, ws: Workspace) -> int:
    runner = _runner(args, ws)
    runner.poll()
    row = runner.show(args.job_id)
    progress = row.pop("progress")
    spec = json.loads(row.pop("spec"))
    for key, value in row.items():
        if value is not None:
            print(f"{key:22s} {value}")
    print(f"{'spec':22s} {json.dumps(spec, sort_keys=True)}")
    print(f"{'progress':22s} {_fmt_progress(progress)}")
    if progress and (progress.get("total_epochs") or progress.get("total_steps")):
        watch(runner, args.job_id, follow=args.follow)
    return 0


def cmd_logs(args, ws: Workspace) -> int:
    runner = _runner(args, ws)
    row = runner.show(args.job_id)
    path = Path(row["log_path"] or runner.job_dir(args.job_id) / "job.log")
    position = 0
    if path.exists() and args.lines:
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        sys.stdout.write("".join(lines[-args.lines:]))
        position = path.stat().st_size
    while True:
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
                position = fh.tell()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
        if not args.follow:
            return 0
        runner.poll()
        if runner.status(args.job_id) in FINAL:
            # One more read for what was written just before the end.
            if path.exists() and path.stat().st_size > position:
                continue
            return 0
        time.sleep(0.5)


def cmd_cancel(args, ws: Workspace) -> int:
    runner = LocalRunner(ws, cancel_grace=args.grace)
    status = runner.cancel(args.job_id, wait=not args.no_wait)
    print(f"{args.job_id}: {status}")
    return 0


def cmd_resume(args, ws: Workspace) -> int:
    runner = _runner(args, ws)
    job_id = runner.resume(args.job_id)
    row = runner.show(job_id)
    print(f"{job_id} (resumes {args.job_id} from {row['resume_from'] or 'the beginning: no checkpoint'})")
    if args.wait:
        watch(runner, job_id)
        return end_message(runner, job_id)
    return 0


def cmd_daemon(args, ws: Workspace) -> int:
    from jobs.runner import run_scheduler
    runner = _runner(args, ws)
    print(f"scheduling jobs of {ws.root} every {args.interval:g} s, at most {runner.max_concurrent} at once "
          "(Ctrl-C stops the scheduler; running jobs go on)", file=sys.stderr)
    run_scheduler(runner, interval=args.interval)
    return 0


def cmd_slurm(args, ws: Workspace) -> int:
    from jobs.slurm import submit_slurm
    runner = LocalRunner(ws)
    spec = _spec_from_args(args)
    gpus = args.gpus_per_node if args.gpus_per_node is not None else (0 if spec.device == "cpu" else spec.devices)
    job_id, path, slurm_id = submit_slurm(runner, spec, nodes=args.nodes, gpus_per_node=gpus, time=args.time,
                                          partition=args.partition, account=args.account,
                                          cpus_per_task=args.cpus_per_task, submit=not args.no_submit)
    print(job_id)
    if slurm_id:
        print(f"submitted to SLURM as job {slurm_id}; script {path}")
    else:
        print(f"script written to {path}; submit it with: sbatch {path}")
    return 0


def _number_list(cast):
    def parse(text: str):
        try:
            return [cast(x) for x in text.replace(" ", "").split(",") if x]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {cast.__name__}s, got {text!r}") from None
    return parse


def cmd_sweep(args, ws: Workspace) -> int:
    from jobs.sweeps import plan_sweep, submit_sweep
    runner = _runner(args, ws)
    plan = plan_sweep(_spec_from_args(args), args.seeds, args.fractions, subset_seed=args.subset_seed,
                      name=args.name)
    group_id = submit_sweep(runner, plan)
    print(group_id)
    print(f"{len(plan.seeds)} seeds x {len(plan.fractions)} fractions = {len(plan.members())} fine-tune jobs queued",
          file=sys.stderr)
    if args.wait:
        return _follow_sweep(runner, group_id)
    return 0


def _follow_sweep(runner: LocalRunner, group_id: str, interval: float = 2.0) -> int:
    from cardio_core.queries.sweeps import sweep_members
    while True:
        runner.poll()
        members = sweep_members(runner.store, group_id)
        if members["status"].isin(FINAL).all():
            break
        time.sleep(interval)
    _print_sweep(runner, group_id)
    return 0 if (members["status"] == "succeeded").all() else 1


def _print_sweep(runner: LocalRunner, group_id: str) -> None:
    from cardio_core.queries.sweeps import SWEEP_METRIC, sweep_curve, sweep_results, sweep_task_of
    results = sweep_results(runner.store, group_id)
    print(results[["seed", "fraction", "job_id", "status", "attempts", "n_train", "value"]].to_string(index=False))
    curve = sweep_curve(runner.store, group_id)
    print(f"\nlabel-efficiency curve: {SWEEP_METRIC[sweep_task_of(runner.store, group_id)]['text']}, "
          "mean over seeds with its 95 % t interval")
    print(curve.to_string(index=False) if not curve.empty else "(no member has finished yet)")


def cmd_sweeps(args, ws: Workspace) -> int:
    from cardio_core.queries.sweeps import list_sweeps
    runner = _runner(args, ws)
    runner.poll()
    if args.group_id:
        _print_sweep(runner, args.group_id)
        return 0
    df = list_sweeps(runner.store)
    if df.empty:
        print("no sweeps")
        return 0
    print(df[["group_id", "name", "task", "n_members", "n_succeeded", "n_active", "n_failed",
              "n_cancelled"]].to_string(index=False, max_colwidth=50))
    return 0


def cmd_sweep_cancel(args, ws: Workspace) -> int:
    from jobs.sweeps import cancel_sweep
    for job_id, status in cancel_sweep(LocalRunner(ws), args.group_id, wait=not args.no_wait).items():
        print(f"{job_id}: {status}")
    return 0


def cmd_sweep_resume(args, ws: Workspace) -> int:
    from jobs.sweeps import resume_sweep
    runner = _runner(args, ws)
    resumed = resume_sweep(runner, args.group_id)
    for old, new in resumed.items():
        print(f"{new} (resumes {old})")
    if not resumed:
        print("nothing to resume: no member failed or was cancelled")
    if args.wait:
        return _follow_sweep(runner, args.group_id)
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_jobs_parser(subparsers) -> argparse.ArgumentParser:
    """Add `jobs` and its subcommands to an argparse subparsers object."""
    jobs = subparsers.add_parser("jobs", help="background jobs: submit, list, show, logs, cancel, resume, sweeps, "
                                                 "daemon, slurm")
    sub = jobs.add_subparsers(dest="jobs_command", required=True)

    def spec_args(p, spec_required=False):
        p.add_argument("spec_file", nargs=None if spec_required else "?", help="job spec (.json or .toml)")
        p.add_argument("--kind", help="job kind (instead of, or overriding, the file's)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                       help="set a field, params.KEY or overrides.KEY (value parsed as JSON if it can be)")
        p.add_argument("--devices", type=int, default=None, metavar="N",
                       help="DDP processes per node: GPUs, or CPU processes with device cpu (default: the spec's, 1)")

    def concurrency(p):
        p.add_argument("--max-concurrent", type=int, default=None,
                       help="jobs run at once (default: number of CUDA GPUs, or 1)")

    s = sub.add_parser("submit", help="queue a job and start it when a slot is free")
    spec_args(s)
    concurrency(s)
    s.add_argument("--wait", action="store_true", help="show a progress bar until the job ends")
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser("list", help="jobs, newest first")
    s.add_argument("--status", choices=STATUSES)
    s.add_argument("--limit", type=int, default=50)
    concurrency(s)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("show", help="one job: status, spec, progress")
    s.add_argument("job_id")
    s.add_argument("--follow", action="store_true", help="keep the progress bar until the job ends")
    concurrency(s)
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("logs", help="print a job's log")
    s.add_argument("job_id")
    s.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    s.add_argument("--lines", "-n", type=int, default=0, help="only the last N lines (default: all)")
    concurrency(s)
    s.set_defaults(func=cmd_logs)

    s = sub.add_parser("cancel", help="stop a job (SIGTERM, then SIGKILL after --grace seconds)")
    s.add_argument("job_id")
    s.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL (default 10)")
    s.add_argument("--no-wait", action="store_true", help="return after asking; the scheduler finishes it")
    s.set_defaults(func=cmd_cancel)

    s = sub.add_parser("resume", help="continue a failed or cancelled job from its last checkpoint (new job id)")
    s.add_argument("job_id")
    s.add_argument("--wait", action="store_true")
    concurrency(s)
    s.set_defaults(func=cmd_resume)

    s = sub.add_parser("sweep", help="one fine-tune spec over several seeds x training fractions, as one group")
    spec_args(s)
    s.add_argument("--seeds", type=_number_list(int), required=True, help="training seeds, e.g. 0,1,2,3,4")
    s.add_argument("--fractions", type=_number_list(float), default=[1.0, 0.1, 0.01],
                   help="training fractions, nested (default 1,0.1,0.01)")
    s.add_argument("--subset-seed", type=int, default=0, help="chooses the nested subsets, once for all seeds")
    s.add_argument("--name", help="a label for the sweep")
    s.add_argument("--wait", action="store_true", help="wait until every member has ended, then print the curve")
    concurrency(s)
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("sweeps", help="list sweeps, or one sweep's members, scores and label-efficiency curve")
    s.add_argument("group_id", nargs="?")
    concurrency(s)
    s.set_defaults(func=cmd_sweeps)

    s = sub.add_parser("sweep-cancel", help="cancel every member of a sweep that has not ended")
    s.add_argument("group_id")
    s.add_argument("--no-wait", action="store_true", help="return after asking; the scheduler finishes it")
    s.set_defaults(func=cmd_sweep_cancel)

    s = sub.add_parser("sweep-resume", help="resume every failed or cancelled member of a sweep")
    s.add_argument("group_id")
    s.add_argument("--wait", action="store_true")
    concurrency(s)
    s.set_defaults(func=cmd_sweep_resume)

    s = sub.add_parser("daemon", help="run the scheduler in the foreground (poll every --interval seconds)")
    s.add_argument("--interval", type=_positive_float, default=2.0)
    concurrency(s)
    s.set_defaults(func=cmd_daemon)

    s = sub.add_parser("slurm", help="write an sbatch script for a multi-node DDP job and submit it")
    spec_args(s)
    s.add_argument("--nodes", type=int, required=True)
    s.add_argument("--gpus-per-node", type=int, default=None,
                   help="GPUs per node, one task each (default: --devices, or 0 with device cpu)")
    s.add_argument("--time", required=True, help="time limit, e.g. 12:00:00")
    s.add_argument("--partition", required=True)
    s.add_argument("--account")
    s.add_argument("--cpus-per-task", type=int, default=8)
    s.add_argument("--no-submit", action="store_true", help="only write the script")
    s.set_defaults(func=cmd_slurm)
    return jobs
