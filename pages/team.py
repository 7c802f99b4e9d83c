"""Team: the data root's settings and its users. Everyone sees them; only admins change them (the
service refuses anyone else, whatever the page shows)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from catalog import config, session_tokens, users
from catalog.access import ROLES, a_role
from catalog.errors import CatalogError
from service import actions
from ui import fmt
from ui.session import current_actor, gate

st.title("Team")
actor = current_actor()
admin = actor.can("change_settings")
if not admin:
    st.info(f"You are {a_role(actor.role)}: these settings and users are shown, and only an admin changes them.")

settings = config.load_settings()
st.subheader("Settings")
st.caption(f"Stored in `{config.settings_path()}`. Access control (`auth`: **{settings.auth}**) is changed in that "
           "file on the server, so a form can never lock every admin out.")
with st.form("team_settings"):
    roots = st.text_area("Folders imports by path may read (one per line)", "\n".join(settings.allowed_roots),
                         disabled=not admin, key="tm_roots",
                         help="The data root's uploads are always allowed, each user's own folder for each user.")
    c1, c2, c3 = st.columns(3)
    upload_mb = c1.number_input("Largest upload (MB)", 1, 100_000, settings.max_upload_mb, disabled=not admin,
                                key="tm_upload")
    calibration_mb = c2.number_input("Largest calibration file (MB)", 1, 10_000, settings.max_calibration_mb,
                                     disabled=not admin, key="tm_calib")
    parallel = c3.number_input("Conversions at once", 1, 64, settings.max_parallel_conversions, disabled=not admin,
                               key="tm_parallel")
    if st.form_submit_button("Save settings", **gate("change_settings")):
        changed = replace(settings, allowed_roots=[r.strip() for r in roots.splitlines() if r.strip()],
                          max_upload_mb=int(upload_mb), max_calibration_mb=int(calibration_mb),
                          max_parallel_conversions=int(parallel))
        try:
            actions.save_settings(actor, changed)
            st.success("Settings saved.")
        except CatalogError as exc:
            st.error(str(exc))

st.subheader("Users")
known = users.list_users()
if known:
    st.dataframe([{"name": u.name, "role": u.role, "password": "yes" if u.has_password else "no (proxy or OIDC)",
                   "locked until": f"{u.locked_until:%Y-%m-%d %H:%M} UTC" if u.locked_until else "",
                   "added": fmt.when(u.created_at)} for u in known], hide_index=True, width="stretch")
else:
    st.caption("No users yet: with auth off, the server's shell user is the one admin.")
if not admin:
    st.stop()

left, right = st.columns(2)
with left.form("team_add_user", clear_on_submit=True):
    st.markdown("**Add a user**")
    name = st.text_input("User name", key="tm_new_name", help="Letters, digits and . _ @ - (an e-mail for OIDC).")
    role = st.selectbox("Role", ROLES, key="tm_new_role")
    password = st.text_input("Password (local accounts; at least 12 characters; empty for proxy or OIDC users)",
                             type="password", key="tm_new_password")
    if st.form_submit_button("Add user"):
        try:
            actions.add_user(actor, name.strip(), role, password or None)
            st.success(f"Added {fmt.escape_md(name.strip())} ({role}).")
        except CatalogError as exc:
            st.error(str(exc))
if known:
    with right.form("team_set_role"):
        st.markdown("**Change a role** (also unlocks a locked account)")
        who = st.selectbox("User", [u.name for u in known], key="tm_role_user")
        new_role = st.selectbox("New role", ROLES, key="tm_role_role")
        if st.form_submit_button("Change role"):
            try:
                actions.set_role(actor, who, new_role)
                st.success(f"{fmt.escape_md(who)} is now a {new_role}.")
            except CatalogError as exc:
                st.error(str(exc))

st.subheader("Open sessions")
st.caption("Browser sessions of local accounts. Signing out, a role or password change, and signing a user "
           "out here end them on the server: a copied cookie stops working at once.")
open_now = session_tokens.open_sessions()
if open_now:
    st.dataframe([{"user": s.user_name, "signed in": fmt.when(s.created_at),
                   "last seen": fmt.when(s.last_seen_at) if s.last_seen_at else "",
                   "ends": fmt.when(s.expires_at)} for s in open_now], hide_index=True, width="stretch")
    with st.form("team_sign_out"):
        who_out = st.selectbox("User", sorted({s.user_name for s in open_now}), key="tm_out_user")
        if st.form_submit_button("Sign this user out everywhere"):
            try:
                ended = actions.sign_out_user(actor, who_out)
                st.success(f"Ended {ended} session(s) of {fmt.escape_md(who_out)}.")
            except CatalogError as exc:
                st.error(str(exc))
else:
    st.caption("No open sessions.")
