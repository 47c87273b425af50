"""`cardio`: one command line for the whole tool. Each subcommand has --help."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.errors import CardioError

from cardio_cli import data, jobs, pipeline


def cmd_app(args, ws: Workspace) -> int:
    from app.launch import start_app
    return start_app(ws, host=args.host, port=args.port, headless=args.headless)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cardio", description=__doc__.splitlines()[0])
    p.add_argument("--workspace", help="workspace folder (default: $CARDIO_WORKSPACE or ./workspace)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("app", help="start the Streamlit app on the workspace")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a login)")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--headless", action="store_true", help="do not open a browser")
    s.set_defaults(func=cmd_app)

    data.register(sub)
    jobs.add_jobs_parser(sub)
    pipeline.register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workspace:
        os.environ["CARDIO_WORKSPACE"] = str(Path(args.workspace).resolve())
    ws = Workspace.from_env()
    try:
        return int(args.func(args, ws) or 0)
    except CardioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
