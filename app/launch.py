"""`cardio app`: start the background work the workspace needs, then Streamlit in the foreground."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.store import Store

from app import auth


def start_app(ws: Workspace, *, host: str = "127.0.0.1", port: int = 8501, headless: bool = False) -> int:
    ws.ensure()
    Store(ws.db_path)  # create / migrate before the app's first read
    from app.services import ensure_background_services
    ensure_background_services(ws, size=os.environ.get("CARDIO_DEMO_SIZE", "default"))
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, CARDIO_WORKSPACE=str(ws.root))
    if not auth.is_loopback(host):  # an empty or unknown address counts as exposed
        auth.require_auth_configured()
    cmd = streamlit_command(repo, host, port)
    if headless:
        cmd += ["--server.headless", "true"]
    return subprocess.call(cmd, cwd=repo, env=env)


def streamlit_command(repo: Path, host: str, port: int) -> list[str]:
    """`streamlit run` with the bind address and the Host names the WebSocket accepts (DNS rebinding)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(repo / "app" / "main.py"),
           "--server.address", host, "--server.port", str(port)]
    for name in auth.allowed_hosts(host):
        cmd += ["--server.allowedHosts", name]
    return cmd
