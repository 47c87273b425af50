"""app/auth.py: the login fails closed (issue 11, points 1-4)."""
import subprocess
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from app import auth
from app.testing import fill_store
from cardio_core.errors import CardioError

REPO = Path(__file__).resolve().parents[2]
GOOD = "correct horse battery staple"


@pytest.fixture
def option():
    """Set Streamlit config options for one test and put them back."""
    saved = {}

    def set_(name, value):
        saved.setdefault(name, st_config.get_option(name))
        st_config.set_option(name, value)
    yield set_
    for name, value in saved.items():
        st_config.set_option(name, value)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    fill_store(root, n_chapman=40, n_ptbxl=10, n_acdc=10)
    return root


def run_app(monkeypatch, ws):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws))
    return AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=30).run()


# 1. an unset or unknown bind address counts as exposed
@pytest.mark.parametrize("address", ["", None, "0.0.0.0", "10.1.2.3", "my-host"])
def test_unset_or_unknown_address_is_exposed(address):
    assert not auth.is_loopback(address)
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("localhost") and auth.is_loopback("::1")


def test_app_started_without_the_project_config_asks_for_a_login(monkeypatch, ws, option, tmp_path):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(auth, "SECRETS_PATHS", (tmp_path / "none.toml",))
    option("server.address", "")  # what Streamlit has without .streamlit/config.toml: every interface
    at = run_app(monkeypatch, ws)
    assert not at.exception
    assert any("needs a login" in e.value for e in at.error) and not at.get("metric")


def test_launch_refuses_an_empty_host_without_login(monkeypatch, tmp_path):
    from app import launch
    from cardio_core.config import Workspace
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(auth, "SECRETS_PATHS", (tmp_path / "none.toml",))
    monkeypatch.setattr("app.services.ensure_background_services", lambda *a, **k: None)
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("streamlit must not start"))
    with pytest.raises(CardioError, match="needs a login"):
        launch.start_app(Workspace(tmp_path / "ws"), host="")


# 2. DNS rebinding: allowedHosts set, and the Host header checked again in the app
def test_allowed_hosts_are_loopback_plus_the_public_name(monkeypatch, tmp_path):
    monkeypatch.delenv(auth.PUBLIC_HOST_ENV, raising=False)
    none = [tmp_path / "none.toml"]
    assert auth.allowed_hosts("127.0.0.1", none) == ["localhost", "127.0.0.1", "::1"]
    monkeypatch.setenv(auth.PUBLIC_HOST_ENV, "cardio.example.org")
    assert auth.allowed_hosts("0.0.0.0", none) == ["localhost", "127.0.0.1", "::1", "cardio.example.org"]
    from app.launch import streamlit_command
    cmd = streamlit_command(REPO, "0.0.0.0", 8501)
    hosts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "::1", "cardio.example.org"]
    import tomllib
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["allowedHosts"] == ["localhost", "127.0.0.1", "::1"]


@pytest.mark.parametrize("host,ok", [("localhost:8501", True), ("127.0.0.1", True), ("[::1]:8501", True),
                                     ("evil.example.com", False), ("localhost.evil.com", False),
                                     ("user@localhost", False), ("", False), (None, False)])
def test_host_header_check(host, ok):
    assert auth.host_allowed(host, auth.LOOPBACK_HOSTS) is ok


def test_foreign_host_header_is_refused_inside_the_app(monkeypatch, ws):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(auth, "_host_header", lambda st: "attacker.example.com")
    at = run_app(monkeypatch, ws)
    assert any("host name is not allowed" in e.value for e in at.error) and not at.get("metric")
    monkeypatch.setattr(auth, "_host_header", lambda st: "localhost:8501")
    at = run_app(monkeypatch, ws)
    assert not at.error and at.get("metric")


# 3. the password gate
@pytest.mark.parametrize("weak", ["a", " ", "short-password!", " " * 20])
def test_weak_passwords_are_refused(monkeypatch, weak):
    monkeypatch.setenv(auth.PASSWORD_ENV, weak)
    with pytest.raises(CardioError, match="at least 16"):
        auth.require_auth_configured(secrets_paths=[])
    assert not auth.check_password(weak)


def test_wrong_guesses_are_slowed_down_per_session_and_address(monkeypatch):
    monkeypatch.setenv(auth.PASSWORD_ENV, GOOD)
    now = [0.0]
    throttle = auth.Throttle(clock=lambda: now[0])
    results = [auth.attempt_login("guess", ["session:1", "address:10.0.0.9"], throttle) for _ in range(30)]
    assert sum(msg == "Wrong password." for _, msg in results) == auth.Throttle.FREE
    assert all("Too many" in msg for _, msg in results[auth.Throttle.FREE:])
    # the right password is not even checked while the address must wait, from a new session too
    assert auth.attempt_login(GOOD, ["session:2", "address:10.0.0.9"], throttle) == (False, results[-1][1])
    now[0] += 120
    assert auth.attempt_login(GOOD, ["session:2", "address:10.0.0.9"], throttle) == (True, None)
    # another address is not slowed down by these failures
    assert auth.attempt_login(GOOD, ["session:3", "address:10.0.0.10"], throttle)[0]


def test_oidc_needs_every_key_and_an_allow_list(monkeypatch, tmp_path):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(auth.ALLOWED_USERS_ENV, raising=False)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "https://h/oauth2callback"\ncookie_secret = "0123456789abcdef0"\n')
    with pytest.raises(CardioError) as err:
        auth.require_auth_configured(secrets_paths=[secrets])
    for key in ("client_id", "client_secret", "server_metadata_url", "allow-list"):
        assert key in str(err.value)
    secrets.write_text(secrets.read_text() + 'client_id = "c"\nclient_secret = "s"\n'
                       'server_metadata_url = "https://idp/.well-known/openid-configuration"\n')
    with pytest.raises(CardioError, match="allow-list"):
        auth.require_auth_configured(secrets_paths=[secrets])
    secrets.write_text(secrets.read_text() + '[cardioscope]\nallowed_users = ["alice@example.org", "@lab.org"]\n')
    assert auth.require_auth_configured(secrets_paths=[secrets]) == "oidc"
    allow = auth.allowed_users([secrets])
    assert auth.user_allowed("Alice@example.org", allow) and auth.user_allowed("bob@lab.org", allow)
    assert not auth.user_allowed("mallory@example.org", allow) and not auth.user_allowed("x@evil-lab.org", allow)
    assert not auth.user_allowed("bob@lab.org.evil.com", allow) and not auth.user_allowed(None, allow)


# 4. secrets are never committed
def test_secrets_toml_is_git_ignored():
    out = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", ".streamlit/secrets.toml"])
    assert out.returncode == 0


@pytest.mark.slow
def test_the_real_server_refuses_a_websocket_with_a_foreign_host(ws):
    """DNS rebinding against the real server: the handshake with a foreign Host is refused, a loopback one not."""
    import base64
    import http.client
    import os

    from app.browser_testing import RunningApp

    def handshake(url, host):
        port = int(url.rsplit(":", 1)[1])
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        con.putrequest("GET", "/_stcore/stream", skip_host=True)
        for name, value in (("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()),
                            ("Sec-WebSocket-Version", "13"), ("Origin", f"http://{host}")):
            con.putheader(name, value)
        con.endheaders()
        status = con.getresponse().status
        con.close()
        return status

    with RunningApp(ws, log_path=ws / "streamlit-auth.log") as url:
        port = url.rsplit(":", 1)[1]
        assert handshake(url, f"localhost:{port}") == 101
        assert handshake(url, f"attacker.example.com:{port}") != 101


def test_the_login_form_slows_down_guesses(monkeypatch, ws):
    monkeypatch.setenv(auth.PASSWORD_ENV, GOOD)
    monkeypatch.setattr(auth, "THROTTLE", auth.Throttle())
    at = run_app(monkeypatch, ws)
    messages = []
    for _ in range(auth.Throttle.FREE + 2):
        at.text_input[0].input("wrong guess")
        at.button[0].click().run()
        messages.append(at.error[0].value)
    assert messages[:auth.Throttle.FREE] == ["Wrong password."] * auth.Throttle.FREE
    assert all("Too many wrong passwords" in m for m in messages[auth.Throttle.FREE:])
    at.text_input[0].input(GOOD)
    at.button[0].click().run()
    assert not at.get("metric")  # even the right password waits out the delay
