"""The size limits the browser's upload widgets state and enforce: the Team page's settings
(max_upload_mb, max_calibration_mb), never Streamlit's server-wide default, which said "1GB per
file" while the catalog refused anything over 512 MB."""

from __future__ import annotations

from streamlit import config as st_config

from catalog import config


def _within_server(limit_mb: int) -> int:
    # The server refuses a request body over server.maxUploadSize whatever a widget says, so a
    # setting above it is stated (and enforced) as the server's.
    server_mb = int(st_config.get_option("server.maxUploadSize"))
    return max(1, min(limit_mb, server_mb))


def model_upload_mb() -> int:
    """A model's files uploaded on the Import page (the catalog checks their total)."""
    return _within_server(config.load_settings().max_upload_mb)


def calibration_upload_mb() -> int:
    """A calibration file on the Convert page."""
    return _within_server(config.load_settings().max_calibration_mb)


def limit_help(limit_mb: int, what: str) -> str:
    return f"Up to {limit_mb} MB {what} (the Team page's limit, set by an admin)."
