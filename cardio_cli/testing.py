"""Running `cardio` in-process, for tests: run_cli("status") -> (exit code, stdout, stderr)."""
from __future__ import annotations

import contextlib
import io

from cardio_cli.main import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `cardio ARGS` in this process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse (--help, bad arguments)
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()
