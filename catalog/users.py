"""Local accounts: names, roles and argon2id password hashes, with a lockout after repeated
failures. No default password exists: the first admin is made from the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from catalog import db, session_tokens
from catalog.access import Actor, check_role
from catalog.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
_hasher = PasswordHasher()  # argon2id with the library's current parameters


@dataclass
class User:
    name: str
    role: str
    has_password: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime


def _user(row: dict) -> User:
    return User(row["name"], row["role"], row["password_hash"] is not None, row["failed_logins"] or 0,
                row["locked_until"], row["created_at"])


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidInputError(f"{name!r} is not a user name: use letters, digits and . _ @ - (at most 64).")
    return name


def add_user(name: str, role: str, password: str | None) -> User:
    """A user with a password (local accounts) or without (known from a proxy header or OIDC)."""
    check_name(name)
    check_role(role)
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"A password needs at least {MIN_PASSWORD} characters.")
    with db.connect() as conn:
        if conn.one("SELECT 1 FROM users WHERE name = ?", [name]):
            raise ConflictError(f"There is already a user {name}; change their role instead.")
        conn.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES (?,?,?,?)",
                     [name, role, _hasher.hash(password) if password else None, datetime.now(UTC)])
        return _user(conn.one("SELECT * FROM users WHERE name = ?", [name]))


def set_role(name: str, role: str) -> int:
    """Change a role (and unlock the account); the user's open sessions end, so the new role
    applies from the next sign-in. Returns how many sessions were ended."""
    check_role(role)
    with db.connect() as conn:
        if not conn.one("SELECT 1 FROM users WHERE name = ?", [name]):
            raise NotFoundError(f"There is no user {name}.")
        conn.execute("UPDATE users SET role = ?, failed_logins = 0, locked_until = NULL WHERE name = ?", [role, name])
        return session_tokens.revoke_user(name, f"role changed to {role}")


def set_password(name: str, password: str) -> int:
    """A new password; every open session of the user ends. Returns how many were ended."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"A password needs at least {MIN_PASSWORD} characters.")
    with db.connect() as conn:
        if not conn.one("SELECT 1 FROM users WHERE name = ?", [name]):
            raise NotFoundError(f"There is no user {name}.")
        conn.execute("UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE name = ?",
                     [_hasher.hash(password), name])
        return session_tokens.revoke_user(name, "password changed")


def get_user(name: str) -> User | None:
    with db.connect(write=False) as conn:
        row = conn.one("SELECT * FROM users WHERE name = ?", [name])
    return _user(row) if row else None


def current(actor: Actor) -> Actor:
    """The actor with the role the catalog holds for it now: a demotion applies to the next
    action, whatever a page or a session remembered. An actor without a row (the local admin, a
    proxy's default role) is as given."""
    user = get_user(actor.name)
    return Actor(user.name, user.role) if user else actor


def list_users() -> list[User]:
    with db.connect(write=False) as conn:
        return [_user(r) for r in conn.query("SELECT * FROM users ORDER BY name")]


def sign_in(name: str, password: str) -> Actor:
    """The actor for a right password; a wrong one counts toward a lockout of LOCKOUT after
    MAX_FAILURES in a row. The refusal never says whether the name exists."""
    refused = PermissionDeniedError("Wrong user name or password.")
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.connect() as conn:
        row = conn.one("SELECT * FROM users WHERE name = ?", [name])
        if row is None or row["password_hash"] is None:
            _hasher.hash(password)  # the same time as a real check: no timing hint that the name is unknown
            raise refused
        if row["locked_until"] and row["locked_until"] > now:
            raise PermissionDeniedError(f"Too many wrong passwords: {name} is locked until "
                                        f"{row['locked_until']:%H:%M} UTC; an admin can unlock it sooner.")
        try:
            _hasher.verify(row["password_hash"], password)
            right = True
        except (VerificationError, InvalidHashError):
            right = False
        failures = 0 if right else (row["failed_logins"] or 0) + 1
        locked = now + LOCKOUT if failures >= MAX_FAILURES else None
        # committed before the refusal is raised: raising inside would roll the count back
        conn.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?",
                     [0 if locked else failures, locked, name])
    if not right:
        raise refused
    return Actor(name, row["role"])
