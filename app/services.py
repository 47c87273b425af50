"""What `cardio app` starts before Streamlit: the demo chain on an empty workspace.

The scheduler itself runs inside the app process (a daemon thread started by app/main.py
through jobs.runner.start_background_scheduler), so queued jobs start as soon as the app
is up; jobs are separate processes and survive an app restart.
"""
from __future__ import annotations

from cardio_core.config import Workspace
from cardio_core.store import Store
from cardio_core.vocabulary import ACTIVE_STATUSES


def demo_needed(store: Store) -> bool:
    """True when nothing is ingested yet and no demo job is queued or running."""
    if store.scalar("SELECT count(*) FROM datasets WHERE ingested_at IS NOT NULL"):
        return False
    active = store.scalar("SELECT count(*) FROM jobs WHERE kind = 'demo' AND list_contains(?, status)",
                          [list(ACTIVE_STATUSES)])
    return not active


def ensure_background_services(ws: Workspace, *, size: str = "default") -> str | None:
    """Queue the demo chain if the workspace is empty. Returns the demo job id, if one was queued."""
    from jobs.runner import LocalRunner
    store = Store(ws.db_path)
    runner = LocalRunner(ws, store)
    if not demo_needed(store):
        runner.poll()
        return None
    job_id = runner.submit({"kind": "demo", "params": {"size": size}, "name": "demo chain (first start)"})
    print(f"[cardio] empty workspace: queued the demo chain as job {job_id} "
          f"(follow it on the Jobs page or with `cardio jobs show {job_id} --follow`)")
    return job_id
