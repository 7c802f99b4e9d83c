"""Who is using this browser session, decided on the server from the data root's auth mode:
the local admin (auth off), a signed-in local account, a trusted proxy's user header, or an
OpenID Connect provider's ID token (st.login)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from catalog import config, session_tokens, users
from catalog.access import Actor, local_admin, refusal
from catalog.errors import CatalogError

LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1"}
# The session's cookie value (never the actor: the role is read from the catalog at every run,
# so a demotion or a revoked session applies to the next click)
SESSION_KEY = "session_token"


def listening_locally() -> bool:
    address = st.get_option("server.address") or ""  # empty: every interface
    return address in LOCAL_ADDRESSES


def current_actor() -> Actor:
    """The session's actor; stops the page with a sign-in form or a refusal when there is none."""
    settings = config.load_settings()
    if settings.auth == "off":
        if not listening_locally():
            st.error("Access control is off, which is allowed only while the app listens on localhost; set "
                     '"auth" to "local" or "proxy" in the data root\'s config.json, or start the app with '
                     "--server.address localhost.")
            st.stop()
        return local_admin()
    if settings.auth == "proxy":
        return _proxy_actor(settings)
    if settings.auth == "local":
        return _local_actor() or _sign_in_form()
    if settings.auth == "oidc":
        return _oidc_actor(settings)
    st.error(f'The data root\'s config.json sets auth to {settings.auth!r}; use "off", "local", "proxy" or '
             '"oidc".')
    st.stop()


def gate(action: str, disabled: bool = False) -> dict[str, Any]:
    """Keyword arguments for the button that does `action`: disabled, with the sentence that says
    which role it needs as its tooltip, when the session's role may not. A courtesy only: the
    service layer refuses the change itself, whatever the browser sends."""
    reason = refusal(current_actor(), action)
    return {"disabled": disabled or reason is not None, "help": reason}


def _proxy_actor(settings: config.Settings) -> Actor:
    # The websocket's TCP peer; Streamlit reports a loopback peer (a proxy on this host) as None.
    peer = st.context.ip_address or "127.0.0.1"
    if peer not in settings.trusted_proxies:
        st.error("This catalog takes its users from a single sign-on proxy, and this request did not come "
                 "through it; open the catalog by its proxy's address.")
        st.stop()
    name = (st.context.headers.get(settings.proxy_user_header) or "").strip()
    if not name:
        st.error(f"The proxy sent no {settings.proxy_user_header} header; check its configuration.")
        st.stop()
    return _vouched_actor(name, settings)


def _vouched_actor(name: str, settings: config.Settings) -> Actor:
    """A user named by the proxy or the identity provider: a role from users, else the default."""
    try:
        users.check_name(name)  # text from outside: only a plain user name is believed
    except CatalogError as exc:
        st.error(str(exc))
        st.stop()
    known = users.get_user(name)
    return Actor(name, known.role if known else settings.proxy_default_role)


def _oidc_actor(settings: config.Settings) -> Actor:
    """Streamlit keeps the provider's ID token claims in its own signed cookie (st.user)."""
    if not oidc_configured():
        st.error('Single sign-on is on (auth "oidc") but no provider is configured: add an [auth] section '
                 "with redirect_uri, cookie_secret, client_id, client_secret and server_metadata_url to "
                 ".streamlit/secrets.toml (see README).")
        st.stop()
    if not st.user.is_logged_in:
        st.title("Sign in")
        st.write("This catalog signs you in through your organisation's identity provider.")
        if st.button("Sign in with single sign-on", key="oidc_sign_in", type="primary"):
            st.login()
        st.stop()
    name = str(st.user.get(settings.oidc_user_claim) or "").strip()
    if not name:
        st.error(f"The identity provider's token has no {settings.oidc_user_claim!r} claim; set oidc_user_claim "
                 "in the data root's config.json to a claim it sends (email, preferred_username, sub).")
        st.stop()
    return _vouched_actor(name, settings)


def oidc_configured() -> bool:
    try:
        section = st.secrets.get("auth") or {}
    except (FileNotFoundError, KeyError, ValueError):  # no secrets.toml at all, or one that is not TOML
        return False
    return all(section.get(k) for k in ("redirect_uri", "cookie_secret", "client_id", "server_metadata_url"))


def _sign_in_form() -> Actor:
    st.title("Sign in")
    with st.form("sign_in"):
        name = st.text_input("User name", key="si_name")
        password = st.text_input("Password", type="password", key="si_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            actor = users.sign_in(name, password)
        except CatalogError as exc:
            st.error(str(exc))
        else:
            token = session_tokens.issue(actor.name)
            st.session_state[SESSION_KEY] = token
            # this run delivers the cookie's script; the next one (Continue) opens the catalog
            _set_cookie(token, session_tokens.MAX_AGE_S)
            st.success(f"Signed in as {actor.name}.")
            st.button("Continue", key="si_continue")
    st.caption("No account? An admin makes one: `python cli.py users add NAME --role editor`.")
    st.stop()


def _local_actor() -> Actor | None:
    """This tab's session (or, on a reload or a new tab, the cookie's), if the catalog still
    holds it open; the user's role is read fresh."""
    token = st.session_state.get(SESSION_KEY) or st.context.cookies.get(session_tokens.COOKIE)
    name = session_tokens.verify(token)
    user = users.get_user(name) if name else None
    if user is None:
        st.session_state.pop(SESSION_KEY, None)
        return None
    st.session_state[SESSION_KEY] = token
    return Actor(user.name, user.role)


def _set_cookie(value: str, max_age_s: int) -> None:
    # Streamlit has no API to set a cookie; a script on the page does. SameSite=Strict keeps other
    # sites' pages from sending it. (Not HttpOnly: only the server could set that flag.)
    st.html(f"<script>document.cookie = '{session_tokens.COOKIE}={value}; path=/; max-age={max_age_s}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def sign_out() -> None:
    """Local accounts: forget the session and clear the cookie. OIDC: st.logout clears Streamlit's
    identity cookie and, where the provider publishes an end_session_endpoint, ends its session."""
    if config.load_settings().auth == "oidc":
        st.logout()
        return
    # the server-side row ends first: a copy of the cookie is worthless from now on
    session_tokens.revoke(st.session_state.pop(SESSION_KEY, None) or st.context.cookies.get(session_tokens.COOKIE))
    _set_cookie("", 0)
