"""Getting a workspace ready and starting the app.

`prepare_workspace` ingests the configured real datasets (CARDIO_CHAPMAN_DIR,
CARDIO_PTBXL_DIR, CARDIO_ACDC_DIR) and, for any dataset without one, generates and
ingests the demo dataset in the workspace. Re-running it does only what is missing.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .config import Workspace, configured_dataset_dir
from .store import Store

DATASETS = ("chapman", "ptbxl", "acdc")


def dataset_sources(ws: Workspace) -> dict[str, tuple[Path, bool]]:
    """dataset -> (folder, is_demo)."""
    out = {}
    for name in DATASETS:
        real = configured_dataset_dir(name)
        out[name] = (real, False) if real else (ws.demo_dir / name, True)
    return out


def prepare_workspace(ws: Workspace, *, size: str = "default", seed: int = 0, progress: bool = False) -> dict:
    from .ingest import ingest_dataset
    ws.ensure()
    store = Store(ws.db_path)
    sources = dataset_sources(ws)
    if any(is_demo and not (folder / ".complete").exists() for folder, is_demo in sources.values()):
        from .demo.generate import generate_demo_datasets
        generate_demo_datasets(ws.demo_dir, size=size, seed=seed, progress=progress)
        for name in DATASETS:
            (ws.demo_dir / name).mkdir(parents=True, exist_ok=True)
            (ws.demo_dir / name / ".complete").write_text(f"size={size} seed={seed}\n")
    results = {}
    for name, (folder, is_demo) in sources.items():
        ingested = store.query("SELECT source_dir, n_records FROM datasets WHERE dataset_id = ? "
                               "AND ingested_at IS NOT NULL", [name])
        if ingested and ingested[0][0] == str(folder.resolve()):
            continue
        bar = None
        if progress:
            from .cli import _bar
            bar = _bar(f"ingest {name}")
        results[name] = ingest_dataset(store, ws, name, folder, is_demo=is_demo, seed=seed, progress=bar)
    return results


def start_app(ws: Workspace, *, host: str = "127.0.0.1", port: int = 8501, headless: bool = False) -> int:
    """Start background work the workspace still needs, then run Streamlit in the foreground."""
    ws.ensure()
    Store(ws.db_path)  # create / migrate before the app's first read
    from .app_support import ensure_background_services
    ensure_background_services(ws, size=os.environ.get("CARDIO_DEMO_SIZE", "default"))
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, CARDIO_WORKSPACE=str(ws.root))
    if host not in ("127.0.0.1", "localhost", "::1"):
        from app.auth import require_auth_configured
        require_auth_configured()
    cmd = [sys.executable, "-m", "streamlit", "run", str(repo / "app" / "main.py"),
           "--server.address", host, "--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    return subprocess.call(cmd, cwd=repo, env=env)
