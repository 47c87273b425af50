"""Background jobs: specs, a store-backed queue, worker processes, SLURM scripts.

Importing this package is cheap (no torch); job kinds are imported by the worker.
"""
from .progress import read_progress
from .registry import get_kind, register_kind
from .runner import JobError, LocalRunner, run_scheduler, start_background_scheduler
from .spec import JobSpec, SpecError

__all__ = ["JobSpec", "SpecError", "JobError", "LocalRunner", "register_kind", "get_kind", "read_progress",
           "run_scheduler", "start_background_scheduler"]
