"""Driving the real app in a browser, for tests and benchmarks: `RunningApp` serves a workspace with
`streamlit run` in a subprocess; the helpers wait for pages and use Playwright like a user would."""
from __future__ import annotations

from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """`streamlit run app/main.py` on a workspace in a subprocess; a context manager yielding its URL."""

    def __init__(self, workspace_root: str | Path, port: int | None = None, timeout: float = 60.0, log_path=None):
        self.workspace_root = Path(workspace_root)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.log_path = Path(log_path) if log_path else self.workspace_root / "streamlit.log"
        self.process = None

    def __enter__(self) -> str:
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        env = dict(os.environ, CARDIO_WORKSPACE=str(self.workspace_root), PYTHONUNBUFFERED="1")
        env.pop("CARDIO_APP_PASSWORD", None)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return self.url
            except OSError:
                time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError(f"streamlit did not answer on {self.url} within {self.timeout:.0f} s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.process.kill()
        self._log.close()


# -- browser helpers (Playwright pages) ---------------------------------------------------------------------
def settle(page, title: str, *, draw_ms: int = 2500) -> None:
    """Wait for the page titled `title` to finish its script run, then for WebGL panels to draw."""
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=30_000)
    # Streamlit shows a "running" status widget while the script runs; wait until it is gone.
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)
    page.wait_for_timeout(draw_ms)  # WebGL panels draw after the script ends


def assert_no_exception(page, where: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: " + " | ".join(b.inner_text()[:300] for b in boxes.all())


def box_select(page, chart, frac_x: float = 0.6, frac_y: float = 0.7) -> None:
    """Drag a box-selection over the top-left part of a Plotly chart."""
    chart.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').first.click()
    box = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * frac_x, box["y"] + box["height"] * frac_y, steps=15)
    page.mouse.up()


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox (retrying a click that lands during a rerun)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    for _ in range(5):
        box.locator("input").first.click()
        try:
            page.get_by_role("option").filter(has_text=option).first.wait_for(timeout=3_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    page.get_by_role("option").filter(has_text=option).first.click()
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)


def launch_job(page) -> str:
    """Click the Jobs form's Launch button; the submitted job's id."""
    page.get_by_role("button", name="Launch", exact=True).click()
    message = page.get_by_text("Submitted ", exact=False).first
    message.wait_for(timeout=30_000)
    return message.inner_text().split()[1].rstrip(";")


def job_card_text(page, job_id: str) -> str:
    """The text of one job's card in the Jobs page's live table ('' while it is not listed)."""
    text = page.locator('[data-testid="stMain"]').inner_text()
    jobs_part = text[text.rfind("Jobs\n"):]
    # A card starts with the id on a line of its own; "Submitted <id>; ..." is the form's message, which a
    # half-finished rerun can leave below the heading.
    at = jobs_part.find(job_id + "\n")
    return jobs_part[at:].split("Log tail")[0] if at >= 0 else ""
