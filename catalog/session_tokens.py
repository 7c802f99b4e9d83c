"""Browser sessions of local accounts, kept on the server: the cookie carries a signed session id,
and the session's row decides whether it is still open. Sign-out, a role or password change and
an admin's "sign this user out" revoke rows, so a copied cookie stops working at once. The
signing secret lives in the data root (created on first use, readable by this user only, never in
the repository), so a forged cookie is refused without a catalog read."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from catalog import config, db

COOKIE = "model_catalog_session"
MAX_AGE_S = 12 * 3600
SALT = "model-catalog-session"
# last_seen_at is a courtesy for the Team page: written at most this often per session
SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class OpenSession:
    id: str
    user_name: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None


def secret_path() -> Path:
    return config.data_root() / "session_secret"


def _secret() -> str:
    path = secret_path()
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def issue(name: str) -> str:
    """Open a session for `name` and return its cookie value."""
    sid = secrets.token_urlsafe(24)
    now = _now()
    with db.connect() as conn:
        conn.execute("INSERT INTO sessions (id, user_name, created_at, expires_at, last_seen_at) VALUES (?,?,?,?,?)",
                     [sid, name, now, now + timedelta(seconds=MAX_AGE_S), now])
    return URLSafeTimedSerializer(_secret(), salt=SALT).dumps({"name": name, "sid": sid})


def _claims(token: str | None) -> dict | None:
    if not token:
        return None
    try:
        data = URLSafeTimedSerializer(_secret(), salt=SALT).loads(token, max_age=MAX_AGE_S)
    except BadSignature:  # SignatureExpired is one
        return None
    return data if isinstance(data, dict) and data.get("sid") and data.get("name") else None


def verify(token: str | None) -> str | None:
    """The user name of a session that is still open, or None for a missing, forged, expired or
    revoked one (a token of the earlier kind, without a session id, is refused too)."""
    claims = _claims(token)
    if claims is None:
        return None
    now = _now()
    with db.connect(write=False) as conn:
        row = conn.one("SELECT user_name, expires_at, last_seen_at, revoked_at FROM sessions WHERE id = ?",
                       [claims["sid"]])
    if row is None or row["revoked_at"] is not None or row["expires_at"] <= now or row["user_name"] != claims["name"]:
        return None
    if row["last_seen_at"] is None or now - row["last_seen_at"] > SEEN_EVERY:
        with db.connect() as conn:
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [now, claims["sid"]])
    return row["user_name"]


def revoke(token: str | None, why: str = "signed out") -> None:
    """End the session a cookie names (sign-out); a bad token has nothing to end."""
    claims = _claims(token)
    if claims is None:
        return
    with db.connect() as conn:
        conn.execute("UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL",
                     [_now(), why, claims["sid"]])


def revoke_user(name: str, why: str) -> int:
    """End every open session of a user; returns how many were open. Runs inside the caller's
    transaction when there is one (catalog.db.connect nests)."""
    now = _now()
    with db.connect() as conn:
        row = conn.one("SELECT count(*) AS n FROM sessions WHERE user_name = ? AND revoked_at IS NULL "
                       "AND expires_at > ?", [name, now])
        conn.execute("UPDATE sessions SET revoked_at = ?, revoked_why = ? WHERE user_name = ? AND revoked_at IS NULL",
                     [now, why, name])
    return int(row["n"]) if row else 0


def open_sessions(name: str = "") -> list[OpenSession]:
    """Sessions not revoked and not expired, newest first (one user's, or everyone's)."""
    with db.connect(write=False) as conn:
        rows = conn.query("SELECT id, user_name, created_at, expires_at, last_seen_at FROM sessions WHERE "
                          "revoked_at IS NULL AND expires_at > ? AND (? = '' OR user_name = ?) "
                          "ORDER BY created_at DESC", [_now(), name, name])
    return [OpenSession(**r) for r in rows]
