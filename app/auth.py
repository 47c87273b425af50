"""Who may use the app, and from which host names. Fails closed.

Only an explicit loopback bind address (127.0.0.1, localhost, ::1) counts as local. An
unset or unknown `server.address` (e.g. `streamlit run app/main.py` from a directory
without the project's `.streamlit/config.toml`, where Streamlit listens on every
interface) counts as exposed, and an exposed app needs one of:

- OIDC through Streamlit's built-in `st.login`: an `[auth]` section in
  `.streamlit/secrets.toml` with every key st.login needs (redirect_uri, cookie_secret,
  client_id, client_secret, server_metadata_url; the last three may live in
  `[auth.<provider>]`), plus an allow-list of e-mail addresses or `@domain`s
  (CARDIO_APP_ALLOWED_USERS, or `allowed_users` under `[cardioscope]` in secrets.toml); or
- a shared password of at least 16 characters (CARDIO_APP_PASSWORD), compared in constant
  time, with failed guesses slowed down per session and per client address.

DNS rebinding: the WebSocket only accepts the host names of `allowed_hosts()`
(`server.allowedHosts`, set by `cardio app` and `.streamlit/config.toml`), and `gate()`
checks the Host header again inside the app.

`require_auth_configured()` is called before the server starts on an exposed address;
`gate()` runs at the top of every page and stops the page until the user is in.
"""
from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from cardio_core.errors import CardioError

PASSWORD_ENV = "CARDIO_APP_PASSWORD"
ALLOWED_USERS_ENV = "CARDIO_APP_ALLOWED_USERS"
PUBLIC_HOST_ENV = "CARDIO_APP_PUBLIC_HOST"
MIN_PASSWORD_LENGTH = 16
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
OIDC_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
SECRETS_PATHS = (Path(".streamlit") / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")

INSTRUCTIONS = (
    "The app is bound to a non-loopback (or unset) address, so it needs a login. Either\n"
    f"  - set a team password of at least {MIN_PASSWORD_LENGTH} characters: "
    f"export {PASSWORD_ENV}='a long random string'; or\n"
    "  - configure OIDC for st.login in .streamlit/secrets.toml:\n"
    "      [auth]\n"
    "      redirect_uri = \"https://your-host:8501/oauth2callback\"\n"
    "      cookie_secret = \"a long random string\"\n"
    "      client_id = \"...\"\n"
    "      client_secret = \"...\"\n"
    "      server_metadata_url = \"https://accounts.example.org/.well-known/openid-configuration\"\n"
    "      [cardioscope]\n"
    "      allowed_users = [\"alice@example.org\", \"@example.org\"]\n"
    f"    (or export {ALLOWED_USERS_ENV}='alice@example.org,@example.org');\n"
    "or bind to 127.0.0.1 (the default)."
)


# -- configuration ----------------------------------------------------------------------------------------
def password_configured() -> bool:
    return bool(os.environ.get(PASSWORD_ENV))


def password_problem() -> str | None:
    """Why the configured password is refused (None when it is fine or none is set)."""
    value = os.environ.get(PASSWORD_ENV)
    if value is None or value == "":
        return None
    if len(value.strip()) < MIN_PASSWORD_LENGTH:
        return f"{PASSWORD_ENV} must be at least {MIN_PASSWORD_LENGTH} characters (not counting spaces at the ends)"
    return None


def _secrets(secrets_paths) -> tuple[Path | None, dict]:
    import tomllib
    for path in secrets_paths:
        try:
            return Path(path), tomllib.loads(Path(path).read_text())
        except OSError:
            continue
        except ValueError as exc:
            return Path(path), {"_error": str(exc)}
    return None, {}


def oidc_present(secrets_paths=SECRETS_PATHS) -> bool:
    """True when a secrets.toml has an [auth] section (complete or not)."""
    _, data = _secrets(secrets_paths)
    return isinstance(data.get("auth"), dict)


def oidc_problems(secrets_paths=SECRETS_PATHS) -> list[str]:
    """Every missing or empty key of the [auth] section (and of its providers); [] when complete."""
    path, data = _secrets(secrets_paths)
    if data.get("_error"):
        return [f"{path}: not valid TOML ({data['_error']})"]
    auth = data.get("auth")
    if not isinstance(auth, dict):
        return ["no [auth] section in .streamlit/secrets.toml"]
    problems = [f"{path}: [auth] {k} is missing or empty" for k in ("redirect_uri", "cookie_secret")
                if not str(auth.get(k) or "").strip()]
    secret = str(auth.get("cookie_secret") or "")
    if secret and len(secret) < MIN_PASSWORD_LENGTH:
        problems.append(f"{path}: [auth] cookie_secret must be at least {MIN_PASSWORD_LENGTH} characters")
    providers = {k: v for k, v in auth.items() if isinstance(v, dict)}
    if not providers:
        providers = {"": auth}
    for name, section in providers.items():
        where = f"[auth.{name}]" if name else "[auth]"
        problems += [f"{path}: {where} {k} is missing or empty" for k in PROVIDER_KEYS
                     if not str(section.get(k) or "").strip()]
    return problems


def oidc_configured(secrets_paths=SECRETS_PATHS) -> bool:
    return not oidc_problems(secrets_paths)


def allowed_users(secrets_paths=SECRETS_PATHS) -> list[str]:
    """The OIDC allow-list: e-mail addresses and '@domain' entries, lower-cased."""
    raw = os.environ.get(ALLOWED_USERS_ENV)
    if raw is not None and raw.strip():
        entries = raw.split(",")
    else:
        _, data = _secrets(secrets_paths)
        section = data.get("cardioscope") if isinstance(data.get("cardioscope"), dict) else {}
        value = section.get("allowed_users") or []
        entries = value.split(",") if isinstance(value, str) else list(value)
    return [str(e).strip().lower() for e in entries if str(e).strip()]


def user_allowed(email: str | None, allow_list) -> bool:
    """An exact address, or an address in an allowed '@domain' (never a suffix match on a bare name)."""
    email = (email or "").strip().lower()
    if "@" not in email or email.count("@") != 1 or not email.split("@")[0]:
        return False
    domain = "@" + email.split("@")[1]
    return any(entry == email or (entry.startswith("@") and entry == domain) for entry in allow_list)


def require_auth_configured(secrets_paths=SECRETS_PATHS) -> str:
    """Return 'password' or 'oidc'; raise CardioError naming every problem when neither is usable."""
    problem = password_problem()
    if problem:
        raise CardioError(problem)
    if password_configured():
        return "password"
    if oidc_present(secrets_paths):
        problems = oidc_problems(secrets_paths)
        if not allowed_users(secrets_paths):
            problems.append(f"OIDC needs an allow-list of e-mail addresses or @domains: {ALLOWED_USERS_ENV} or "
                            "allowed_users under [cardioscope] in .streamlit/secrets.toml")
        if problems:
            raise CardioError("The OIDC login is not usable:\n  - " + "\n  - ".join(problems))
        return "oidc"
    raise CardioError(INSTRUCTIONS)


def check_password(candidate: str) -> bool:
    expected = os.environ.get(PASSWORD_ENV, "")
    if not expected or password_problem():
        return False
    return hmac.compare_digest(str(candidate).encode(), expected.encode())


def is_loopback(address: str | None) -> bool:
    """Only an explicit loopback address is local; unset, empty or unknown counts as exposed."""
    return (address or "").strip().lower().strip("[]") in LOOPBACK


# -- host names (DNS rebinding) ---------------------------------------------------------------------------
def allowed_hosts(address: str | None, secrets_paths=SECRETS_PATHS) -> list[str]:
    """The Host names the app answers to: the loopback names, plus, when exposed, the bind address
    (if it is a real address), the configured public host names and the OIDC redirect host."""
    hosts = list(LOOPBACK_HOSTS)
    if is_loopback(address):
        return hosts
    extra = [h.strip() for h in os.environ.get(PUBLIC_HOST_ENV, "").split(",") if h.strip()]
    if address and address.strip() not in ("0.0.0.0", "::", ""):
        extra.append(address.strip())
    _, data = _secrets(secrets_paths)
    auth = data.get("auth") if isinstance(data.get("auth"), dict) else {}
    redirect_host = urlparse(str(auth.get("redirect_uri") or "")).hostname
    if redirect_host:
        extra.append(redirect_host)
    return hosts + [h for h in dict.fromkeys(extra) if h not in hosts]


def host_allowed(host_header: str | None, allowed) -> bool:
    """Whether a Host header (port ignored) names one of `allowed` ('*.domain' wildcards as Streamlit's)."""
    if host_header is None:
        return False
    try:
        parsed = urlparse(f"//{host_header}")
        hostname = parsed.hostname
        _ = parsed.port
    except ValueError:
        return False
    if not hostname or parsed.username or parsed.password or parsed.path or parsed.query or parsed.fragment:
        return False
    hostname = hostname.lower().rstrip(".")
    for pattern in allowed:
        pattern = str(pattern).strip().lower().rstrip(".").strip("[]")
        if pattern == "*" or hostname == pattern or (pattern.startswith("*.") and hostname.endswith(pattern[1:])):
            return True
    return False


# -- slowing down guesses ---------------------------------------------------------------------------------
class Throttle:
    """Failed logins per key (a session, a client address): after FREE failures each further attempt must
    wait 2**(failures - FREE) seconds (at most MAX_DELAY) before it is even checked."""

    FREE = 3
    MAX_DELAY = 60.0

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}

    def wait_s(self, key: str) -> float:
        with self._lock:
            n, last = self._failures.get(key, (0, 0.0))
        if n < self.FREE:
            return 0.0
        delay = min(2.0 ** (n - self.FREE), self.MAX_DELAY)
        return max(0.0, last + delay - self.clock())

    def failed(self, key: str) -> None:
        with self._lock:
            n, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (n + 1, self.clock())
            if len(self._failures) > 10_000:  # bounded memory under a flood of addresses
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


THROTTLE = Throttle()


def attempt_login(candidate: str, keys, throttle: Throttle = THROTTLE) -> tuple[bool, str | None]:
    """(ok, message): refuses without checking while any key must still wait; records the outcome."""
    wait = max((throttle.wait_s(k) for k in keys), default=0.0)
    if wait > 0:
        return False, f"Too many wrong passwords; try again in {wait:.0f} s."
    if check_password(candidate):
        for k in keys:
            throttle.succeeded(k)
        return True, None
    for k in keys:
        throttle.failed(k)
    return False, "Wrong password."


# -- the page gate ----------------------------------------------------------------------------------------
def _host_header(st) -> str | None:
    try:
        return st.context.headers.get("Host")
    except Exception:  # no request context
        return None


def gate() -> None:
    """Stop the page unless the user may see it (see the module docstring)."""
    import streamlit as st

    address = st.get_option("server.address")
    host = _host_header(st)
    # A browser's WebSocket always sends Host; only an in-process run (AppTest) has none.
    if host is not None:
        configured = [h for h in (st.get_option("server.allowedHosts") or []) if h != "*"]
        if not host_allowed(host, configured or allowed_hosts(address)):
            st.error("This host name is not allowed (server.allowedHosts).")
            st.stop()
    problem = password_problem()
    if problem:
        st.error(f"The app's password is refused: {problem}.")
        st.stop()
    if st.session_state.get("_auth_ok"):
        return
    if password_configured():
        st.title("CardioScope")
        with st.form("login"):
            password = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Enter")
        if submitted:
            session_key = st.session_state.setdefault("_auth_session", f"session:{secrets.token_hex(8)}")
            client = getattr(st.context, "ip_address", None) or "local"
            ok, message = attempt_login(password, [session_key, f"address:{client}"])
            if ok:
                st.session_state["_auth_ok"] = True
                st.rerun()
            st.error(message)
        st.stop()
    if oidc_present():
        if not oidc_configured() or not allowed_users():
            st.error("The OIDC login is incomplete; `cardio app` names what is missing.")
            st.stop()
        if not st.user.is_logged_in:
            st.title("CardioScope")
            st.button("Log in", on_click=st.login)
            st.stop()
        # an address the identity provider says is unverified is not the account it names
        if st.user.get("email_verified") is False or not user_allowed(st.user.get("email"), allowed_users()):
            st.error("This account is not on the app's allow-list.")
            st.button("Log out", on_click=st.logout)
            st.stop()
        return
    if not is_loopback(address):
        st.error(INSTRUCTIONS)
        st.stop()
