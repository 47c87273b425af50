"""Background jobs: specs, a store-backed queue, worker processes, SLURM scripts.

Importing this package is cheap (no torch); job kinds are imported by the worker.
"""
from jobs.progress import read_progress
from jobs.kinds import KINDS, JobKind, get_kind
from jobs.runner import JobError, LocalRunner, run_scheduler, start_background_scheduler
from jobs.spec import JobSpec, SpecError

__all__ = ["JobSpec", "SpecError", "JobError", "LocalRunner", "KINDS", "JobKind", "get_kind", "read_progress",
           "run_scheduler", "start_background_scheduler"]
