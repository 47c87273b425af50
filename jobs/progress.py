"""Job progress as a small JSON file beside the job's log, and atomic file writes.

The worker writes runs/<job>/progress.json; the app and the CLI read it without touching
the store. Every write goes to a temporary file that is renamed over the old one, so a
reader (or a job killed mid-write) never sees half a file.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

PROGRESS_FILE = "progress.json"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`.

    A writer killed inside the block leaves only a '*.tmp' file, never a partial `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fraction_done(epoch, total_epochs, step, total_steps) -> float | None:
    """Fraction of the job done; `epoch` counts completed epochs, `step` steps within the current one."""
    if total_epochs:
        within = (step / total_steps) if (step is not None and total_steps) else 0.0
        return min(1.0, ((epoch or 0) + within) / total_epochs)
    if total_steps and step is not None:
        return min(1.0, step / total_steps)
    return None


def _clean(value: Any) -> Any:
    # JSON has no NaN; a diverged loss must not make progress.json unreadable.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        return _clean(value.item())
    return value


class ProgressWriter:
    """Keeps the latest progress and writes it at most every `min_interval` seconds."""

    def __init__(self, job_dir: str | Path, job_id: str, min_interval: float = 1.0, clock=time.time):
        self.path = Path(job_dir) / PROGRESS_FILE
        self.job_id = job_id
        self.min_interval = min_interval
        self.clock = clock
        self.started = clock()
        self.state: dict[str, Any] = {}
        self._last_write = -math.inf
        self._dirty = False

    def update(self, *, epoch: int | None = None, step: int | None = None, total_epochs: int | None = None,
               total_steps: int | None = None, metrics: dict | None = None, message: str | None = None,
               force: bool = False, stage: tuple[int, int, str] | None = None) -> None:
        if stage is not None:
            index, total, name = int(stage[0]), int(stage[1]), str(stage[2])
            if (index, total) != (self.state.get("stage_index"), self.state.get("stage_total")):
                # a new stage: its epochs and steps count from zero
                for key in ("epoch", "step", "total_epochs", "total_steps", "metrics"):
                    self.state.pop(key, None)
            self.state.update(stage_index=index, stage_total=total, stage_name=name)
        for key, value in (("epoch", epoch), ("step", step), ("total_epochs", total_epochs),
                           ("total_steps", total_steps), ("message", message)):
            if value is not None:
                self.state[key] = value
        if metrics:
            self.state["metrics"] = {**self.state.get("metrics", {}), **_clean(dict(metrics))}
        self._dirty = True
        if force or self.clock() - self._last_write >= self.min_interval:
            self.flush()

    def flush(self, status: str | None = None) -> None:
        if status is not None:
            self.state["status"] = status
            self._dirty = True
        if not self._dirty:
            return
        now = self.clock()
        elapsed = max(0.0, now - self.started)
        s = self.state
        within = _fraction_done(s.get("epoch"), s.get("total_epochs"), s.get("step"), s.get("total_steps"))
        fraction = within
        if s.get("stage_total"):   # one overall fraction over all stages
            fraction = min(1.0, (s["stage_index"] + (within or 0.0)) / s["stage_total"])
        eta = None
        if fraction is not None and fraction > 0:
            eta = elapsed * (1.0 - fraction) / fraction
        record = {"job_id": self.job_id, **s, "fraction": fraction, "stage_fraction": within,
                  "elapsed_s": round(elapsed, 3),
                  "eta_s": None if eta is None else round(eta, 3), "updated_at": now}
        atomic_write_text(self.path, json.dumps(_clean(record), sort_keys=True))
        self._last_write = now
        self._dirty = False


def progress_fraction(progress: dict[str, Any] | None) -> float:
    """The job's fraction done (0..1) from a progress record: its `fraction`, else epochs or steps done."""
    progress = progress or {}
    if progress.get("fraction") is not None:
        return float(min(1.0, max(0.0, progress["fraction"])))
    for done, total in (("epoch", "total_epochs"), ("step", "total_steps"), ("epoch", "epochs")):
        if progress.get(done) is not None and progress.get(total):
            return float(min(1.0, progress[done] / progress[total]))
    return 0.0


def progress_text(progress: dict[str, Any] | None, *, status: str | None = None) -> str:
    """The one way progress is written everywhere (Overview, Jobs cards, `cardio jobs list`):
    '42% · step 3/5 ECG fine-tune: 40%' for a job of stages, '40% · epoch 4/10' otherwise."""
    progress = progress or {}
    overall = 1.0 if status == "succeeded" else progress_fraction(progress)
    parts = [f"{overall:.0%}"]
    if progress.get("stage_total") and status != "succeeded":
        within = progress.get("stage_fraction")
        parts.append(f"step {progress['stage_index'] + 1}/{progress['stage_total']} {progress.get('stage_name', '')}"
                     + (f": {within:.0%}" if within is not None else ""))
    elif progress.get("total_epochs") and status != "succeeded":
        parts.append(f"epoch {progress.get('epoch', 0)}/{progress['total_epochs']}")
    return " · ".join(parts)


def log_tail(path: str | Path | None, n_lines: int = 20, *, roots=None, max_bytes: int = 64_000) -> str:
    """The last `n_lines` non-empty lines of a job log ('' when missing). With `roots`, a log that does
    not lie under one of them is not read (the app shows only workspace files)."""
    if not path:
        return ""
    p = Path(path).resolve()
    if roots is not None and not any(p.is_relative_to(Path(r).resolve()) for r in roots):
        return f"(log {p} is outside the workspace; not shown)"
    try:
        with open(p, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return "\n".join(lines[-n_lines:])


def read_progress(job_dir: str | Path) -> dict[str, Any] | None:
    """The job's last progress record, or None if it has not reported any yet."""
    path = Path(job_dir) / PROGRESS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        # Written atomically, so this means someone else damaged it: report, don't crash the page.
        return {"error": f"{path}: unreadable progress file"}
