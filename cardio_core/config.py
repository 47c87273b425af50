"""Where the workspace lives and what it holds.

One environment variable, CARDIO_WORKSPACE, moves the whole workspace; the default is
./workspace under the current directory. Real dataset folders are configured with
CARDIO_CHAPMAN_DIR / CARDIO_PTBXL_DIR / CARDIO_ACDC_DIR or given by path to
`cardio ingest`; when none is configured the demo datasets are generated in the
workspace on first use.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

WORKSPACE_ENV = "CARDIO_WORKSPACE"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_env(cls) -> "Workspace":
        root = Path(os.environ.get(WORKSPACE_ENV, "workspace")).expanduser().resolve()
        return cls(root)

    @property
    def db_path(self) -> Path:
        return self.root / "cardioscope.duckdb"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def preprocessed_dir(self) -> Path:
        return self.data_dir / "preprocessed"

    @property
    def demo_dir(self) -> Path:
        return self.raw_dir / "demo"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> "Workspace":
        for d in (self.root, self.data_dir, self.raw_dir, self.preprocessed_dir,
                  self.weights_dir, self.runs_dir, self.jobs_dir, self.cache_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                # a read-only workspace: folders it lacks stay missing, and the store is opened read-only
                if not d.is_dir() and exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise
        return self

    def resolve_inside(self, path: str | Path) -> Path:
        """Resolve a user-supplied path and refuse anything outside the workspace roots."""
        p = (self.root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
        if not p.is_relative_to(self.root):
            raise ValueError(f"{path}: outside the workspace {self.root}")
        return p


def configured_dataset_dir(name: str) -> Path | None:
    """A real dataset folder configured by environment variable, or None."""
    value = os.environ.get(f"CARDIO_{name.upper()}_DIR")
    return Path(value).expanduser() if value else None
