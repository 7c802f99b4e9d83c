"""Signed session tokens for local accounts: the browser keeps one in a cookie, signed with a
secret that lives in the data root (created on first use, readable by this user only, never in
the repository), so a reload keeps the user signed in and a forged or stale cookie is refused."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from catalog import config

COOKIE = "model_catalog_session"
MAX_AGE_S = 12 * 3600
SALT = "model-catalog-session"


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


def issue(name: str) -> str:
    return URLSafeTimedSerializer(_secret(), salt=SALT).dumps({"name": name})


def verify(token: str | None) -> str | None:
    """The user name a token was issued to, or None for a missing, forged or expired one."""
    if not token:
        return None
    try:
        data = URLSafeTimedSerializer(_secret(), salt=SALT).loads(token, max_age=MAX_AGE_S)
    except BadSignature:  # SignatureExpired is one
        return None
    return data.get("name") if isinstance(data, dict) else None
