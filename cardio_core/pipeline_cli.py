"""More `cardio` subcommands (registered by cli.py): one cmd_* function per subcommand."""
from __future__ import annotations

from pathlib import Path


def _store(ws):
    from .store import Store
    return Store(ws.ensure().db_path)


def cmd_report(args, ws) -> int:
    from .report import write_report
    out = Path(args.out) if args.out else ws.ensure().runs_dir / args.run / "report"
    paths = write_report(_store(ws), args.run, out)
    print(f"report of {args.run} written to {out}")
    for p in paths:
        print(f"  {p.name}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("report", help="write a run's thesis-style tables as Markdown and CSV")
    s.add_argument("run", help="run id (see `cardio status` or the Runs page)")
    s.add_argument("--out", help="output folder (default: <workspace>/runs/RUN/report/)")
    s.set_defaults(func=cmd_report)
