"""Named schema migrations, each applied once and recorded in the database.

Opening an older catalog applies the missing steps in order, inside one transaction per step,
so an upgrade either completes or leaves the catalog as it was. Never edit a released step:
add a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from catalog.database import Database

log = logging.getLogger(__name__)

Migration = Callable[[Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(name: str) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("0001_initial")
def _initial(db: Database) -> None:
    db.execute(
        """CREATE TABLE sources (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            origin_kind VARCHAR NOT NULL,      -- hf_repo | server_path | hf_cache | upload | demo
            origin_ref VARCHAR,
            origin_revision VARCHAR,
            architecture VARCHAR,
            task VARCHAR,
            param_count BIGINT,
            context_length BIGINT,
            license VARCHAR,
            tags VARCHAR DEFAULT '[]',         -- JSON list
            notes VARCHAR DEFAULT '',
            added_by VARCHAR,
            added_at TIMESTAMP NOT NULL,
            content_hash VARCHAR NOT NULL,
            root_variant_id VARCHAR
        )"""
    )
    db.execute(
        """CREATE TABLE variants (
            id VARCHAR PRIMARY KEY,
            source_id VARCHAR NOT NULL,
            parent_id VARCHAR,
            format VARCHAR NOT NULL,
            precision VARCHAR,
            backend VARCHAR NOT NULL,
            conversion VARCHAR NOT NULL,
            options VARCHAR DEFAULT '{}',      -- JSON, normalized
            toolkit_versions VARCHAR DEFAULT '{}',
            state VARCHAR NOT NULL,            -- available | files_missing | deleted
            created_at TIMESTAMP NOT NULL,
            job_id VARCHAR,
            size_bytes BIGINT DEFAULT 0,
            metadata VARCHAR DEFAULT '{}',     -- JSON: what the conversion learnt (types, smoke test)
            deleted_at TIMESTAMP
        )"""
    )
    db.execute("CREATE INDEX variants_source ON variants(source_id)")
    db.execute("CREATE INDEX variants_parent ON variants(parent_id)")
    db.execute(
        """CREATE TABLE variant_files (
            variant_id VARCHAR NOT NULL,
            relpath VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            sha256 VARCHAR NOT NULL
        )"""
    )
    db.execute("CREATE INDEX variant_files_variant ON variant_files(variant_id)")
    db.execute(
        """CREATE TABLE jobs (
            id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,             -- import | convert | benchmark
            state VARCHAR NOT NULL,
            recipe VARCHAR NOT NULL,           -- JSON, exactly what runs
            title VARCHAR,
            source_id VARCHAR,
            input_variant_id VARCHAR,
            target_variant_id VARCHAR,
            created_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP,
            ended_at TIMESTAMP,
            pid INTEGER,
            pid_started DOUBLE,                -- process start time, guards against pid reuse
            runner VARCHAR,                    -- supervisor | cli
            error VARCHAR,
            result VARCHAR,                    -- JSON
            submitted_by VARCHAR,
            attempt INTEGER DEFAULT 1
        )"""
    )
    db.execute("CREATE TABLE job_deps (job_id VARCHAR NOT NULL, depends_on VARCHAR NOT NULL)")


@migration("0002_benchmark_results")
def _benchmarks(db: Database) -> None:
    db.execute(
        """CREATE TABLE benchmark_results (
            id VARCHAR PRIMARY KEY,
            variant_id VARCHAR NOT NULL,
            source_id VARCHAR NOT NULL,
            job_id VARCHAR,
            protocol_id VARCHAR NOT NULL,
            profile VARCHAR NOT NULL,
            runtime VARCHAR NOT NULL,
            fingerprint_id VARCHAR NOT NULL,
            fingerprint VARCHAR NOT NULL,      -- JSON
            metrics VARCHAR NOT NULL,          -- JSON: metric name -> number
            raw VARCHAR,                       -- JSON: the runner's raw output
            toolkit_versions VARCHAR,
            flags VARCHAR DEFAULT '[]',        -- JSON list, e.g. machine_loaded
            created_at TIMESTAMP NOT NULL
        )"""
    )
    db.execute("CREATE INDEX results_variant ON benchmark_results(variant_id)")
    db.execute("CREATE INDEX results_source ON benchmark_results(source_id)")


@migration("0003_variant_intermediate")
def _intermediate(db: Database) -> None:
    # Intermediates (an F16 made for a batch of quantizations) may be cleaned up from Storage.
    db.execute("ALTER TABLE variants ADD COLUMN intermediate BOOLEAN DEFAULT FALSE")


@migration("0004_saved_comparisons")
def _comparisons(db: Database) -> None:
    # A saved comparison keeps the result ids it showed, so a later benchmark never changes it.
    db.execute(
        """CREATE TABLE comparisons (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            spec VARCHAR NOT NULL               -- JSON: result ids, baseline, gates, weights, chart choices
        )"""
    )


@migration("0005_users_and_audit")
def _users_and_audit(db: Database) -> None:
    db.execute(
        """CREATE TABLE users (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL,             -- viewer, editor or admin
            password_hash VARCHAR,             -- argon2id; NULL for users known from a proxy or OIDC
            failed_logins INTEGER DEFAULT 0,
            locked_until TIMESTAMP,
            created_at TIMESTAMP NOT NULL
        )"""
    )
    # Append-only: the catalog has no code that updates or deletes a row (tests/test_access.py checks).
    db.execute(
        """CREATE TABLE audit_log (
            happened_at TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            object_id VARCHAR,
            detail VARCHAR                     -- JSON
        )"""
    )
    db.execute("CREATE INDEX audit_happened_at ON audit_log(happened_at)")


@migration("0006_sessions")
def _sessions(db: Database) -> None:
    # A signed-in browser session of a local account. The cookie names the row; the row decides:
    # sign-out, a role or password change and an admin's sign-out revoke it on the server.
    db.execute(
        """CREATE TABLE sessions (
            id VARCHAR PRIMARY KEY,
            user_name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            expires_at TIMESTAMP NOT NULL,
            last_seen_at TIMESTAMP,
            revoked_at TIMESTAMP,
            revoked_why VARCHAR
        )"""
    )
    db.execute("CREATE INDEX sessions_user ON sessions(user_name)")


@migration("0007_hf_precision_labels")
def _hf_precision_labels(db: Database) -> None:
    # Imported Hugging Face folders were labelled with config.json's dtype ("float32"), every
    # conversion with F32/F16/BF16: one label per precision, so pre-flight and filters agree.
    for dtype, label in (("float32", "F32"), ("float16", "F16"), ("bfloat16", "BF16")):
        db.execute("UPDATE variants SET precision = ? WHERE format = 'hf' AND precision = ?", [label, dtype])


def applied(db: Database) -> list[str]:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
    )
    return [r["name"] for r in db.query("SELECT name FROM schema_migrations ORDER BY name")]


def migrate(db: Database, upto: str | None = None) -> list[str]:
    """Apply every missing step (or up to `upto`, for tests); return the names applied."""
    done = set(applied(db))
    ran: list[str] = []
    for name, step in MIGRATIONS:
        if name not in done:
            db.execute("BEGIN TRANSACTION")
            try:
                step(db)
                db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)", [name, datetime.now(UTC)]
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            log.info("applied migration %s", name)
            ran.append(name)
        if name == upto:
            break
    return ran
