"""The `cardio` command line: help on every subcommand, setup on an empty workspace, status, problems."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardio_cli.main import build_parser
from cardio_core.config import Workspace
from cardio_core.store import Store

from cardio_cli.testing import run_cli

REPO = Path(__file__).resolve().parents[2]


def _subcommands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_top_level_help_lists_the_subcommands():
    rc, out, _ = run_cli("--help")
    assert rc == 0 and out.startswith("usage: cardio")
    for name in ("setup", "ingest", "problems", "status", "demo-data", "app"):
        assert name in out


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command):
    rc, out, err = run_cli(command, "--help")
    assert rc == 0, err
    assert out.startswith(f"usage: cardio {command}")


def test_console_script_runs():
    exe = Path(sys.executable).with_name("cardio")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cardio_cli.main"]
    proc = subprocess.run(cmd + ["ingest", "--help"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "DATASET" in proc.stdout.upper() and "path" in proc.stdout


def test_ingest_of_a_missing_folder_exits_1_with_a_clear_message(tmp_path):
    rc, out, err = run_cli("--workspace", tmp_path / "ws", "ingest", "acdc", tmp_path / "no_such_dir")
    assert rc == 1
    assert err.strip() == f"error: {tmp_path / 'no_such_dir'}: dataset folder does not exist"
    store = Store(Workspace(tmp_path / "ws").db_path)
    assert store.scalar("SELECT count(*) FROM datasets") == 0
    assert store.scalar("SELECT count(*) FROM records") == 0


def test_ingest_status_and_problems_through_the_cli(demo_root, tmp_path):
    ws = tmp_path / "ws"
    rc, out, err = run_cli("--workspace", ws, "ingest", "chapman", demo_root / "chapman")
    assert rc == 0, err
    assert out.startswith("chapman: 16 files, ")
    store = Store(Workspace(ws).db_path)
    problems = store.query("SELECT file, problem FROM problems WHERE dataset_id = 'chapman'")
    assert problems, "the demo plan puts quirks (NaN age, unknown codes, flat lead) in every Chapman set"
    for file, problem in problems:
        assert f"{file}: {problem}" in out
    rc, out, _ = run_cli("--workspace", ws, "problems", "--dataset", "chapman", "--limit", "1")
    assert rc == 0 and f"... and {len(problems) - 1} more" in out
    rc, out, _ = run_cli("--workspace", ws, "status")
    assert rc == 0
    assert "chapman" in out and str(demo_root / "chapman") in out
    assert f"problems: {len(problems)}" in out


@pytest.fixture
def small_tiny(monkeypatch):
    """`--size tiny`, shrunk further so the test generates in seconds."""
    from cardio_core.demo import generate
    monkeypatch.setitem(generate.SIZES, "tiny", {"chapman": 10, "ptbxl": 10, "acdc": 5, "paired": 8})
    for name in ("CHAPMAN", "PTBXL", "ACDC", "PAIRED"):
        monkeypatch.delenv(f"CARDIO_{name}_DIR", raising=False)


def test_setup_on_an_empty_workspace_ingests_the_demo_datasets_once(small_tiny, tmp_path):
    ws = tmp_path / "ws"
    rc, out, err = run_cli("--workspace", ws, "setup", "--size", "tiny")
    assert rc == 0, err
    store = Store(Workspace(ws).db_path)
    rows = store.query("SELECT dataset_id, is_demo, n_records, ingested_at FROM datasets ORDER BY dataset_id")
    assert [r[0] for r in rows] == ["acdc", "chapman", "paired_cmr", "paired_ecg", "ptbxl"]
    assert all(r[1] and r[2] > 0 and r[3] is not None for r in rows)
    for dataset in ("acdc", "chapman", "ptbxl", "paired"):
        assert dataset in out
        assert (Workspace(ws).demo_dir / dataset / ".complete").exists()
    n_usable = store.scalar("SELECT count(*) FROM records WHERE NOT excluded")
    assert store.scalar("SELECT count(*) FROM preprocessed") == n_usable

    t0 = time.perf_counter()
    rc, out2, err = run_cli("--workspace", ws, "setup", "--size", "tiny")
    elapsed = time.perf_counter() - t0
    assert rc == 0, err
    assert store.query("SELECT dataset_id, is_demo, n_records, ingested_at FROM datasets "
                       "ORDER BY dataset_id") == rows  # nothing re-ingested
    assert "ingest" not in err  # no progress bars: nothing to do
    assert elapsed < 5, elapsed


def test_report_help_names_no_page_that_does_not_exist():
    from cardio_cli.testing import run_cli
    rc, out, _ = run_cli("report", "--help")
    assert rc == 0 and "Runs page" not in out and "cardio status" in out
