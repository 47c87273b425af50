"""A read-only workspace: every page is served read-only with a banner, nothing that writes is offered
(issue 11, point 11)."""
import errno
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.testing import fill_store

REPO = Path(__file__).resolve().parents[2]
PAGES = ("overview", "explore", "compare", "subclusters", "metrics", "jobs")


@pytest.fixture
def read_only_ws(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    fill_store(root, n_chapman=60, n_ptbxl=16, n_acdc=10)
    for lock in root.glob("*.duckdb.*"):
        lock.unlink()
    real_open, real_access = os.open, os.access

    def ro_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(root)) and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    def ro_access(path, mode, *args, **kwargs):
        if str(path).startswith(str(root)) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "access", ro_access)
    monkeypatch.setenv("CARDIO_WORKSPACE", str(root))
    monkeypatch.setenv("CARDIO_APP_SCHEDULER", "1")  # the scheduler must not start either
    return root


@pytest.mark.parametrize("page", PAGES)
def test_pages_are_served_read_only(page, read_only_ws, monkeypatch):
    started = []
    monkeypatch.setattr("app.common.start_background_scheduler", lambda ws: started.append(ws))
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    if page != "overview":
        at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("read-only" in w.value for w in at.warning)
    assert not started
    if page == "jobs":
        launch = [b for b in at.get("form_submit_button") if b.proto.label == "Launch"]
        assert launch and launch[0].proto.disabled
        assert all(b.proto.disabled for b in at.button if b.proto.label in ("Cancel", "Resume"))
    if page == "explore":
        save = [b for b in at.get("form_submit_button") if b.proto.label == "Save bookmark"]
        assert save and save[0].proto.disabled
