"""Job kinds by name: kind name -> function fn(spec, ctx).

A job runs in a fresh worker process, so a registration made inside the app would not
reach it. Kinds are therefore found by import: an entry is either a callable or a
"module:function" string resolved on first use (so importing jobs/ never imports
torch), and the provider modules below are imported when a name is looked up, so that
the modules they name can call register_kind(...) at import time.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

from .spec import KINDS

KindFn = Callable[[Any, Any], Any]

_ENTRIES: dict[str, KindFn | str] = {
    "sleep": "jobs.registry:run_sleep",
}
# Modules that register the product's kinds (finetune, pretrain, embed, ...) when imported.
PROVIDERS: list[str] = ["cardio_core.job_kinds"]
_loaded_providers: set[str] = set()


class KindError(LookupError):
    pass


def _load_providers() -> None:
    for module in PROVIDERS:
        if module in _loaded_providers:
            continue
        _loaded_providers.add(module)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # Only a missing provider is tolerated; a provider that fails inside is a bug to show.
            if exc.name != module and not module.startswith(f"{exc.name}."):
                raise


def register_kind(name: str, fn: KindFn | str) -> None:
    """Register a kind; `fn` is a callable or a "module:function" string imported lazily."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"kind name must be an identifier, got {name!r}")
    if not (callable(fn) or (isinstance(fn, str) and fn.count(":") == 1)):
        raise ValueError(f"kind {name!r}: expected a callable or 'module:function', got {fn!r}")
    _ENTRIES[name] = fn


def unregister_kind(name: str) -> None:
    _ENTRIES.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Every kind a spec may name: the documented ones plus any registered."""
    _load_providers()
    return tuple(dict.fromkeys([*KINDS, *sorted(_ENTRIES)]))


def has_kind(name: str) -> bool:
    """Whether an implementation is registered for `name` (without importing it)."""
    _load_providers()
    return name in _ENTRIES


def check_kind(name: str) -> None:
    """Raise KindError unless `name` is registered and its module exists (without importing it)."""
    _load_providers()
    entry = _ENTRIES.get(name)
    if entry is None:
        available = ", ".join(sorted(_ENTRIES)) or "none"
        raise KindError(f"no implementation registered for {name!r} yet (available: {available})")
    if isinstance(entry, str):
        module_name = entry.partition(":")[0]
        try:
            found = importlib.util.find_spec(module_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise KindError(f"job kind {name!r}: module {module_name} not found")


def get_kind(name: str) -> KindFn:
    _load_providers()
    entry = _ENTRIES.get(name)
    if entry is None:
        available = ", ".join(sorted(_ENTRIES)) or "none"
        raise KindError(f"no implementation registered for job kind {name!r} (available: {available})")
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise KindError(f"job kind {name!r}: cannot load {entry}: {exc}") from exc
        _ENTRIES[name] = fn
        return fn
    return entry


# -- the built-in 'sleep' kind: a stand-in for training, used by the tests ------------------

def run_sleep(spec, ctx) -> dict:
    """Sleep `steps` x `seconds`, reporting progress each step and checkpointing like training.

    params: seconds (per step, 0.1), steps (5, or spec.epochs), checkpoint_every (1),
    fail (False) + fail_at (step, 1), write_seconds (time spent inside each checkpoint
    write, 0), ignore_stop (False: never look at should_stop, to test SIGKILL escalation),
    spawn_child (False: start a child process in the job's process group).
    """
    import json
    import subprocess
    import sys
    import time

    from .progress import atomic_path

    p = spec.params
    seconds = float(p.get("seconds", 0.1))
    steps = int(p.get("steps", spec.epochs or 5))
    every = int(p.get("checkpoint_every", spec.checkpoint_every or 1))
    fail_at = int(p.get("fail_at", 1)) if p.get("fail") else None
    write_seconds = float(p.get("write_seconds", 0.0))
    ignore_stop = bool(p.get("ignore_stop", False))
    if seconds < 0 or steps < 1 or every < 1 or write_seconds < 0:
        raise ValueError(f"sleep job: bad params {p!r}")

    child = None
    if p.get("spawn_child"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (ctx.job_dir / "child.pid").write_text(str(child.pid))

    first = 1
    if ctx.resume_from is not None:
        first = int(json.loads(ctx.resume_from.read_text())["step"]) + 1
        ctx.log.info("resuming after step %d from %s", first - 1, ctx.resume_from)
    ctx.report_progress(epoch=first - 1, total_epochs=steps, force=True)
    done_log = ctx.job_dir / "steps.log"
    ckpt_dir = ctx.job_dir / "checkpoints"
    last = first - 1
    for step in range(first, steps + 1):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.should_stop() and not ignore_stop:
                return {"first_step": first, "last_step": last, "stopped": True}
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        if fail_at is not None and step == fail_at:
            raise RuntimeError(f"sleep job asked to fail at step {step}")
        with open(done_log, "a") as fh:
            fh.write(f"{step}\n")
        last = step
        if step % every == 0 or step == steps:
            path = ckpt_dir / f"step_{step:05d}.json"
            payload = json.dumps({"step": step, "padding": "x" * 4096})
            with atomic_path(path) as tmp:
                with open(tmp, "w") as fh:
                    fh.write(payload[: len(payload) // 2])
                    fh.flush()
                    time.sleep(write_seconds)  # a window in which a kill leaves a half-written file
                    fh.write(payload[len(payload) // 2:])
            ctx.register_checkpoint(path, epoch=step, step=step)
        ctx.report_progress(epoch=step, total_epochs=steps, metrics={"loss": 1.0 / step})
    if child is not None:
        child.terminate()
        child.wait()
    return {"first_step": first, "last_step": last, "stopped": False}
