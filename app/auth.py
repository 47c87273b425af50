"""Who may use the app when it is reachable from other machines.

On 127.0.0.1 (the default) nobody but the local user can reach the app, so no login is
asked. Binding to any other address requires one of:

- OIDC through Streamlit's built-in `st.login`: an `[auth]` section in
  `.streamlit/secrets.toml` (redirect_uri, cookie_secret, client_id, client_secret,
  server_metadata_url); or
- a shared password for a small team: the environment variable CARDIO_APP_PASSWORD
  (compared in constant time).

`require_auth_configured()` is called before the server starts on a non-loopback
address; `gate()` runs at the top of every page and stops the page until the user is in.
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from cardio_core.errors import CardioError

PASSWORD_ENV = "CARDIO_APP_PASSWORD"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "")
SECRETS_PATHS = (Path(".streamlit") / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")

INSTRUCTIONS = (
    "The app is bound to a non-loopback address, so it needs a login. Either\n"
    f"  - set a team password: export {PASSWORD_ENV}='a long random string'; or\n"
    "  - configure OIDC for st.login in .streamlit/secrets.toml:\n"
    "      [auth]\n"
    "      redirect_uri = \"https://your-host:8501/oauth2callback\"\n"
    "      cookie_secret = \"a long random string\"\n"
    "      client_id = \"...\"\n"
    "      client_secret = \"...\"\n"
    "      server_metadata_url = \"https://accounts.example.org/.well-known/openid-configuration\"\n"
    "or bind to 127.0.0.1 (the default)."
)


def password_configured() -> bool:
    return bool(os.environ.get(PASSWORD_ENV))


def oidc_configured(secrets_paths=SECRETS_PATHS) -> bool:
    """True when a secrets.toml has an [auth] section with the keys st.login needs."""
    import tomllib
    for path in secrets_paths:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        auth = data.get("auth")
        if isinstance(auth, dict) and auth.get("redirect_uri") and auth.get("cookie_secret"):
            return True
    return False


def require_auth_configured(secrets_paths=SECRETS_PATHS) -> str:
    """Return 'password' or 'oidc'; raise CardioError with instructions when neither is configured."""
    if password_configured():
        return "password"
    if oidc_configured(secrets_paths):
        return "oidc"
    raise CardioError(INSTRUCTIONS)


def check_password(candidate: str) -> bool:
    expected = os.environ.get(PASSWORD_ENV, "")
    return bool(expected) and hmac.compare_digest(candidate.encode(), expected.encode())


def is_loopback(address: str | None) -> bool:
    return (address or "").strip() in LOOPBACK


def gate() -> None:
    """Stop the page unless the user may see it (see the module docstring)."""
    import streamlit as st

    if st.session_state.get("_auth_ok"):
        return
    address = st.get_option("server.address")
    if password_configured():
        st.title("CardioScope")
        with st.form("login"):
            password = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Enter")
        if submitted and check_password(password):
            st.session_state["_auth_ok"] = True
            st.rerun()
        if submitted:
            st.error("Wrong password.")
        st.stop()
    if oidc_configured():
        if not st.user.is_logged_in:
            st.title("CardioScope")
            st.button("Log in", on_click=st.login)
            st.stop()
        return
    if not is_loopback(address):
        st.error(INSTRUCTIONS)
        st.stop()
