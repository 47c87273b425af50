"""What the subcommands share: the workspace's store and a progress bar."""
from __future__ import annotations

import sys

from cardio_core.config import Workspace
from cardio_core.store import Store


def open_store(ws: Workspace) -> Store:
    return Store(ws.ensure().db_path)


def progress_bar(desc: str):
    """update(done, total) callback drawing a tqdm bar on stderr (created on the first update)."""
    from tqdm import tqdm
    state = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return update
