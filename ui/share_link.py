"""A saved comparison's link as a colleague must open it: the full URL (the address this browser
used), not the app's relative path, and a word when that address serves this machine only."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = {"localhost", "127.0.0.1", "::1"}  # an app listening here serves this machine only
UNSHAREABLE_HOSTS = LOOPBACK | {"0.0.0.0"}  # names in a URL that mean the reader's own machine


def full_link(path: str, page_url: str | None) -> str:
    """path ("/compare?c=...") on the origin of the page the user is on; path alone without one."""
    parts = urlsplit(page_url or "")
    if not parts.scheme or not parts.netloc:
        return path
    return f"{parts.scheme}://{parts.netloc}{path}"


def local_only_note(page_url: str | None, server_address: str | None) -> str:
    """A sentence when colleagues cannot open the link: the app listens on this machine only, or
    the browser reached it by a loopback name; "" otherwise."""
    if (server_address or "").strip() in LOOPBACK:
        return (f"This app serves this machine only (server.address is {server_address}): colleagues can open "
                "the link once it listens on a network address or behind the team's proxy.")
    host = urlsplit(page_url or "").hostname or ""
    if host in UNSHAREABLE_HOSTS:
        return (f"You opened the app as {host}, a name that means each colleague's own machine: share its network "
                "address instead.")
    return ""
