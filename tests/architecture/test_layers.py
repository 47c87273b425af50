"""The import-linter contracts in pyproject.toml hold, and would catch the cycles the layout once had.

Each case copies the packages to a temporary folder, adds one forbidden import and runs
`lint-imports` with the project's own configuration there: it must fail.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("cardio_core", "jobs", "app", "pages", "cardio_cli", "bench")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True,
                          text=True, timeout=120, env={"PATH": str(LINT.parent), "PYTHONPATH": str(root)})


def test_the_project_keeps_its_contracts():
    out = lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


# (module that gains the import, the import, what it would reintroduce)
EDGES = [
    ("cardio_core/pipeline/setup.py", "from cardio_cli.common import progress_bar", "library -> CLI (bootstrap <-> cli)"),
    ("cardio_core/pipeline/pretrain.py", "from cardio_core.pipeline.finetune import parent_weights",
     "pretrain -> finetune (finetune <-> pretrain)"),
    ("cardio_core/pipeline/finetune.py", "from cardio_core.pipeline.pretrain import mdm_options",
     "finetune -> pretrain"),
    ("jobs/kinds.py", "from jobs.spec import SpecError", "kinds -> spec (registry <-> spec)"),
    ("cardio_core/pipeline/finetune.py", "from jobs.spec import SpecError", "library -> jobs (SpecError from finetune)"),
    ("cardio_core/analysis/evaluate.py", "import app.services", "library -> app (app_support in core)"),
    ("cardio_core/queries/metrics.py", "from cardio_core.report import report_tables", "queries <-> report"),
    ("cardio_core/training/modules.py", "from cardio_core.analysis.analyse import analyse_weights",
     "training -> analysis (training calling analysis)"),
]


@pytest.mark.parametrize("path, line, what", EDGES, ids=[e[2] for e in EDGES])
def test_a_forbidden_edge_breaks_a_contract(tmp_path, path, line, what):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n\ndef _forbidden():\n    {line}\n")
    out = lint(tmp_path)
    assert out.returncode != 0, f"{what} was not caught:\n{out.stdout}"
    assert "BROKEN" in out.stdout
