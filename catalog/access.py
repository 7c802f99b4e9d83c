"""Who may do what: three roles, each allowed what the one below it may do and more.

Every change goes through a function that takes an Actor and calls `require` first (see
service/), so a hidden button is never the only check."""

from __future__ import annotations

from dataclasses import dataclass

from catalog import config
from catalog.errors import InvalidInputError, PermissionDeniedError

ROLES = ("viewer", "editor", "admin")
# action -> the least role allowed to do it, and how the refusal names it
ACTIONS: dict[str, tuple[str, str]] = {
    "view": ("viewer", "browsing the catalog"),
    "export": ("viewer", "exporting"),
    "import": ("editor", "importing a model"),
    "convert": ("editor", "converting"),
    "benchmark": ("editor", "running benchmarks"),
    # a model loaded in a runner process on the server costs its CPU and memory as a benchmark does
    "try_model": ("editor", "trying a model on the server"),
    "save_comparison": ("editor", "saving a comparison"),
    "edit_notes": ("editor", "editing notes and tags"),
    "manage_jobs": ("editor", "cancelling or retrying jobs"),
    "delete": ("admin", "deleting"),
    "manage_users": ("admin", "managing users"),
    "change_settings": ("admin", "changing the data root's settings"),
    "run_code": ("admin", "turning on options that run a model's own code (trust_remote_code)"),
}


# What each role may do, in the words the sidebar shows to a signed-in user.
ROLE_SUMMARY = {
    "viewer": "As a viewer you browse, view benchmarks and comparisons, and export.",
    "editor": "As an editor you also import, convert, benchmark and try models, save comparisons and edit notes; "
              "deleting, users and settings are for admins.",
    "admin": "As an admin you may do everything, including deleting, users and settings.",
}


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def can(self, action: str) -> bool:
        """A role outside ROLES (a hand-edited row, a proxy's header) may do nothing; refusal
        says why."""
        least, _ = ACTIONS[action]
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(least)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"There is no role {role!r}; choose one of {', '.join(ROLES)}.")
    return role


def a_role(role: str) -> str:
    """"a viewer", "an editor", "an admin"."""
    return f"{'an' if role[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {role}"


def refusal(actor: Actor, action: str) -> str | None:
    """The one sentence that refuses an action the actor's role does not allow; None when it does."""
    if actor.can(action):
        return None
    least, what = ACTIONS[action]
    if actor.role not in ROLES:
        return (f"{actor.name} has the role {actor.role!r}, which this catalog does not know (it knows "
                f"{', '.join(ROLES)}), so {what} is refused; ask an admin to set your role.")
    return f"{actor.name} is {a_role(actor.role)}, and {what} needs the {least} role; ask an admin to change your role."


def require(actor: Actor, action: str) -> None:
    """Refuse, with that sentence, an action the actor's role does not allow."""
    if (reason := refusal(actor, action)) is not None:
        raise PermissionDeniedError(reason)


def local_admin() -> Actor:
    """The server's shell user: the admin when auth is off, and for the CLI without --as."""
    return Actor(config.local_user(), "admin")
