"""Where the catalog lives and the settings a team may change.

One data root holds everything: the DuckDB file, artifacts, job folders and uploads. The
environment variable MODEL_CATALOG_HOME (or the CLI's --data-root) moves all of it at once.
Settings live in `<root>/config.json` so that the app, the CLI and job processes agree.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInputError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = PROJECT_DIR / "data"
ROOT_ENV = "MODEL_CATALOG_HOME"


def data_root() -> Path:
    """The data root in force: MODEL_CATALOG_HOME if set, else the embedded data/ folder."""
    root = Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def set_data_root(path: str | os.PathLike[str]) -> Path:
    """Point this process (and the processes it starts) at another data root."""
    os.environ[ROOT_ENV] = str(Path(path).expanduser().resolve())
    return data_root()


def db_path() -> Path:
    return data_root() / "catalog.duckdb"


def artifacts_dir() -> Path:
    return _sub("artifacts")


def jobs_dir() -> Path:
    return _sub("jobs")


def uploads_dir() -> Path:
    return _sub("uploads")


def smoke_cache_root() -> Path:
    return data_root() / "cache" / "smoke"


def smoke_cache_dir(variant_id: str) -> Path:
    """A variant's outputs on fixed inputs, kept while the variant is: the parent's side of the
    smoke tests of its conversions, and, for a benchmark reference, its logits on the eval ids."""
    return smoke_cache_root() / variant_id


def _sub(name: str) -> Path:
    path = data_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# The chapter's workflow gates on the Compare page: keep a variant only if it keeps 95% of the
# baseline's quality, runs at least twice as fast and needs at least half less memory.
EXECUTORS = ("local", "ray")
DEFAULT_COMPARE_GATES: dict[str, float] = {"quality_retention": 0.95, "speedup": 2.0, "memory_reduction": 0.5}


def local_user() -> str:
    """Who acts in this process until sign-in exists: the server's shell user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return f"uid-{os.getuid()}"


def _default_parallel_conversions() -> int:
    # A conversion of a small model peaks around 3-4 GB; leave room for the app and a runner.
    try:
        import psutil

        total_gb = psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover - psutil is a requirement
        total_gb = 8
    return max(1, min(os.cpu_count() or 1, int(total_gb // 8)))


@dataclass
class Settings:
    """Team settings, stored as JSON in the data root."""

    # Server folders that imports by path may read from. The data root's uploads are always allowed.
    allowed_roots: list[str] = field(default_factory=lambda: [str(Path.home()), "/tmp"])
    max_parallel_conversions: int = field(default_factory=_default_parallel_conversions)
    # Seconds without a heartbeat after which a running job whose process we cannot see is dead.
    lease_timeout_s: float = 30.0
    # Largest upload accepted through the browser, in megabytes.
    max_upload_mb: int = 512
    # Largest calibration file (text or images) a conversion accepts, in megabytes.
    max_calibration_mb: int = 64
    # Time limit for a Hugging Face Hub fetch, in seconds.
    hub_timeout_s: float = 20.0
    # Who the user is: "off" (one local admin; only while the app listens on localhost), "local"
    # (accounts with passwords, cli.py users add), "proxy" (a trusted SSO proxy's header) or "oidc"
    # (OpenID Connect through st.login, the provider in .streamlit/secrets.toml).
    auth: str = "off"
    proxy_user_header: str = "X-Forwarded-User"
    trusted_proxies: list[str] = field(default_factory=list)  # addresses the proxy header is believed from
    # The role of a user the proxy or the OIDC provider vouches for who has no row in users.
    proxy_default_role: str = "viewer"
    oidc_user_claim: str = "email"  # the ID token's claim that names the user
    # Team defaults for the Compare page's gates ({metric: minimum}); a comparison may override them.
    compare_gates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COMPARE_GATES))
    # Each toolkit's own switches, by toolkit name ({toolkit: {switch: value}}), set by an admin in
    # this file; a toolkit reads only its own entry and documents its switches in its declaration.
    toolkit_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where jobs run: "local" (the supervisor's child processes on this machine) or "ray" (tasks on
    # the Ray cluster at ray_address, host:port, each on a worker with the hardware it needs).
    executor: str = "local"
    ray_address: str = ""

    @property
    def allowed_paths(self) -> list[Path]:
        return [Path(p).expanduser().resolve() for p in self.allowed_roots] + [uploads_dir()]


def settings_path() -> Path:
    return data_root() / "config.json"


def load_settings() -> Settings:
    path = settings_path()
    if not path.exists():
        return Settings()
    raw = json.loads(path.read_text())
    known = {k: v for k, v in raw.items() if k in Settings.__dataclass_fields__}
    if known.get("auth", "off") != "off" and "allowed_roots" not in known:
        # With sign-in on, a user may not read the server user's home: an inbox and the HF cache only.
        known["allowed_roots"] = team_allowed_roots()
    return Settings(**known)


def team_allowed_roots() -> list[str]:
    """The default import folders once access control is on: <root>/inbox and the Hugging Face cache."""
    inbox = data_root() / "inbox"
    inbox.mkdir(exist_ok=True)
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return [str(inbox), str(Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub"))]


def check_settings(settings: Settings) -> None:
    """Refuse, in one sentence, settings that would not work once saved."""
    for root in settings.allowed_roots:
        if not Path(root).expanduser().is_absolute():
            raise InvalidInputError(f"{root!r} is not an absolute folder path; import folders start with / or ~.")
    if settings.executor not in EXECUTORS:
        raise InvalidInputError(f"executor must be one of {', '.join(EXECUTORS)}, not {settings.executor!r}.")
    if settings.executor == "ray" and ":" not in settings.ray_address:
        raise InvalidInputError("executor 'ray' needs ray_address, the cluster head's host:port "
                                "(for example 10.0.0.5:6379).")
    for name in ("max_upload_mb", "max_calibration_mb", "max_parallel_conversions"):
        if getattr(settings, name) < 1:
            raise InvalidInputError(f"{name} must be at least 1.")


def save_settings(settings: Settings) -> None:
    path = settings_path()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(settings), indent=2))
    tmp.replace(path)


def offline_environment() -> dict[str, str]:
    """The generic variables that keep the catalog off the network and telemetry off (the Hugging
    Face libraries every toolkit uses, Streamlit); each toolkit declares its own on its record,
    and entry points apply both (backends.registry.apply_offline_environment)."""
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "DISABLE_TELEMETRY": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "TOKENIZERS_PARALLELISM": "false",
    }


def apply_offline_environment() -> None:
    for key, value in offline_environment().items():
        os.environ.setdefault(key, value)
