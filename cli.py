"""Model Catalog without a browser: `python cli.py --help`.

Exit codes: 0 success, 1 a job failed, 2 bad input, 3 not found, 4 conflict (busy, exists),
5 refused (the role), 141 the reader of the output went away (`cli.py jobs show J | head`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from catalog import config
from catalog.access import Actor

EXIT_OK, EXIT_JOB_FAILED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_DENIED = 0, 1, 2, 3, 4, 5
EXIT_PIPE_CLOSED = 128 + 13  # as a shell reports a process that SIGPIPE ended


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        if is_dataclass(data):
            data = asdict(data)
        elif isinstance(data, list):
            data = [asdict(d) if is_dataclass(d) else d for d in data]
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def _wait(args: argparse.Namespace, job_id: str) -> int:
    from worker.runner import run_to_completion

    last = {"line": ""}

    def show(job: Any, progress: dict) -> None:
        line = f"{job.state:<10} {progress.get('fraction', 0) * 100:5.1f}% {progress.get('message', '')[:60]:<60}"
        if args.json or line == last["line"]:
            return
        last["line"] = line
        # Redraw in place on a terminal; one line per change in logs.
        print(("\r" + line) if sys.stderr.isatty() else line, end="" if sys.stderr.isatty() else "\n",
              file=sys.stderr, flush=True)

    job = run_to_completion(job_id, on_progress=show)
    if not args.json:
        print(file=sys.stderr)
    _out(args, job, _job_line(job))
    return EXIT_OK if job.state == "succeeded" else EXIT_JOB_FAILED


def cmd_import(args: argparse.Namespace) -> int:
    from backends.importers import ImportRequest
    from service import actions

    if args.demo or args.example:
        req = ImportRequest(kind="demo", example=args.example or "smollm2")
    elif args.hub:
        req = ImportRequest(kind="hub", repo_id=args.hub, revision=args.revision or "")
    elif args.hf_cache:
        req = ImportRequest(kind="hf_cache", repo_id=args.hf_cache, revision=args.revision or "",
                            path=args.cache_dir or "")
    else:
        req = ImportRequest(kind="path", path=args.path or "")
    req.name, req.notes = args.name or "", args.notes or ""
    req.tags = [t for t in (args.tags or "").split(",") if t]
    req.trust_remote_code = args.trust_remote_code
    sub = actions.import_model(cli_actor(args), req)
    if args.queue or sub.job is None:
        _out(args, {"job_id": sub.job.id if sub.job else None}, sub.message)
        return EXIT_OK
    return _wait(args, sub.job.id)


def cmd_list(args: argparse.Namespace) -> int:
    from catalog import sources, variants

    rows, total = sources.list_sources(search=args.search or "", limit=args.limit)
    counts = variants.variant_counts([s.id for s in rows])
    text = "\n".join(f"{s.id}  {s.name:<40} {s.architecture or '-':<12} {counts.get(s.id, 0)} variant(s)"
                     for s in rows) or "The catalog is empty; try `python cli.py import --demo`."
    _out(args, rows, text)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from catalog import sources, variants

    if args.id.startswith("v-"):
        v = variants.get_variant(args.id)
        lineage = " <- ".join(a.label for a in variants.ancestors(v.id))
        _out(args, v, f"{v.id} {v.label} [{v.state}] {v.size_bytes:,} bytes\n  from: {lineage or '(import)'}\n"
             + "\n".join(f"  {f.relpath} {f.size_bytes:,} {f.sha256[:16]}" for f in v.files))
    else:
        s = sources.get_source(args.id)
        vs = variants.variants_of_source(s.id)
        _out(args, {"source": asdict(s), "variants": [asdict(v) for v in vs]},
             f"{s.id} {s.name} ({s.architecture}, {s.param_count or 0:,} parameters)\n"
             + "\n".join(f"  {v.id} {v.label:<20} {v.state:<13} parent={v.parent_id}" for v in vs))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from service import actions

    dest = Path(args.dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    path = actions.export_variant(cli_actor(args), args.variant, dest, as_zip=args.zip)
    _out(args, {"path": str(path)}, f"exported to {path}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from catalog import variants
    from service import actions

    deps = [d for d in variants.descendants(args.variant) if d.state != "deleted"]
    if deps and not args.yes:
        print(f"{len(deps)} variant(s) derive from {args.variant}: " + ", ".join(d.id for d in deps)
              + ". Re-run with --yes to delete it anyway.", file=sys.stderr)
        return EXIT_CONFLICT
    v = actions.delete_variant(cli_actor(args), args.variant)
    _out(args, v, f"deleted {v.id}; its tombstone stays in the lineage")
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from catalog import jobs

    if args.action == "list":
        from catalog import db

        if not db.read_only_root():  # a read-only data root is listed as it is
            jobs.reconcile_now()
        rows = jobs.list_jobs(limit=args.limit)
        _out(args, rows, "\n".join(f"{j.id} {j.state:<12} {j.kind:<9} {j.title or ''}"
                                   + (f"  -- {j.error}" if j.error else "") for j in rows) or "no jobs")
        return EXIT_OK
    if not args.job:
        raise SystemExit("give a job id")
    from service import actions

    if args.action == "cancel":
        job = actions.cancel_job(cli_actor(args), args.job)
    elif args.action == "retry":
        job = actions.retry_job(cli_actor(args), args.job)
        if args.wait:
            return _wait(args, job.id)
    elif args.action == "wait":
        return _wait(args, args.job)
    else:
        job = jobs.get_job(args.job)
        if not args.json:
            _show_job(job)
            return EXIT_OK
    _out(args, job, _job_line(job))
    return EXIT_OK


def _job_line(job: Any) -> str:
    return f"job {job.id} {job.state}" + (f": {job.error}" if job.error else "")


def _show_job(job: Any) -> None:
    """The job's state first, then its log under a heading: the log's first line ("queued: ...",
    written at submit) read as the state of a finished job when it came first."""
    from catalog import jobfiles

    print(_job_line(job) + (f"\n  {job.title}" if job.title else ""))
    # A crash shows what the parent kept: the log's last lines and the process's own output.
    log_text = job.crash["log_tail"] if job.crash else jobfiles.read_log(job.id, tail_lines=40)
    if log_text.strip():
        print("log (last 40 lines):\n" + log_text.rstrip("\n"))


def cmd_comparisons(args: argparse.Namespace) -> int:
    """Saved comparisons as the Compare page shows them: list, show (the verdict, gates and
    headline table) and export (the page's HTML, PNG, CSV and JSON, written by the same code)."""
    from bench.compare_export import PngUnavailable, export_files, to_json, to_text
    from bench.compare_view import CompareSpec, build_view
    from catalog import comparisons
    from catalog.errors import InvalidInputError

    if args.action == "list":
        rows = comparisons.list_comparisons(args.search or "", limit=args.limit)
        _out(args, rows, "\n".join(f"{c.id}  {c.name:<40} {c.created_by:<16} {c.updated_at:%Y-%m-%d %H:%M}  "
                                   f"{len(c.shown_ids)} results" for c in rows) or "no saved comparisons")
        return EXIT_OK
    if not args.id:
        raise InvalidInputError("Give a comparison id (c-...); `cli.py comparisons list` shows them.")
    saved = comparisons.get_comparison(args.id)
    view = build_view(CompareSpec.from_dict(saved.spec))
    link = comparisons.comparison_link(saved.id)
    if args.action == "show":
        _out(args, json.loads(to_json(view, saved.name)),
             f"{saved.name}\nsaved by {saved.created_by}, {saved.created_at:%Y-%m-%d %H:%M} UTC · link: {link}\n\n"
             + to_text(view))
        return EXIT_OK
    dest = Path(args.dest or ".").resolve()
    try:
        files = export_files(view, saved.name, link, args.format or ["html", "csv", "json"])
    except PngUnavailable as exc:  # no Chromium here: one sentence, nothing written
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, data in files.items():
        (dest / file_name).write_bytes(data)
        written.append(str(dest / file_name))
    _out(args, {"files": written}, "\n".join(f"wrote {w}" for w in written))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    if args.action in ("import", "bundle"):
        return _bench_elsewhere(args)
    if args.action == "export":
        from catalog.results import as_text, latest_results

        text = as_text(latest_results(args.ids[0], profile=args.profile, with_raw=args.format == "json"), args.format)
        if args.out:
            Path(args.out).write_text(text)
        else:
            print(text)
        return EXIT_OK
    from bench.jobs.common import BASELINE_ADDED, benchmark_set
    from service import actions

    profile = args.profile or "quick"
    run = benchmark_set(args.ids, profile)  # what the Benchmarks page measures for the same pick
    if len(run) > len(args.ids) and not args.json:
        print(BASELINE_ADDED, file=sys.stderr)
    subs = actions.benchmark(cli_actor(args), run, profile)
    if args.queue:
        _out(args, [s.job.id for s in subs], "\n".join(s.message for s in subs))
        return EXIT_OK
    return max(_wait(args, s.job.id) for s in subs)


def _bench_elsewhere(args: argparse.Namespace) -> int:
    """`bench import FILE [--variant ID]`: a device run's result.json or an upstream tool's report;
    `bench bundle VARIANT... --out FILE.zip [--hashes-only]`: a device-run bundle."""
    from catalog.errors import InvalidInputError
    from service import actions

    if args.action == "import":
        if len(args.ids) != 1:
            raise InvalidInputError("Give one file to import: a device run's result.json or a benchmark tool's report.")
        path = Path(args.ids[0])
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a file; give a device run's result.json or a benchmark tool's "
                                    "report.")
        ids = actions.import_result(cli_actor(args), path.name, path.read_bytes(), args.variant)
        _out(args, {"result_ids": ids}, "\n".join(f"imported result {i}" for i in ids))
        return EXIT_OK
    if not args.out:
        raise InvalidInputError("Name the bundle to write with --out FILE.zip.")
    out = actions.device_bundle(cli_actor(args), args.ids, Path(args.out).resolve(), args.profile or "quick",
                                include_files=not args.hashes_only)
    _out(args, {"path": str(out), "bytes": out.stat().st_size},
         f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB); on the device: unzip it, run `python run_bundle.py`, "
         "and import its result.json with `cli.py bench import result.json`")
    return EXIT_OK


def cli_actor(args: argparse.Namespace) -> Actor:
    """The shell user on the server is the admin; --as NAME acts with that user's role. An
    empty --as is refused (it never falls back to the admin), and so is a name with no user."""
    from catalog import users
    from catalog.access import local_admin
    from catalog.errors import InvalidInputError, NotFoundError

    if not hasattr(args, "as_user"):
        return local_admin()
    name = args.as_user.strip()
    if not name:
        raise InvalidInputError("--as needs a user name; leave --as out to act as the shell user (an admin).")
    user = users.get_user(name)
    if user is None:
        raise NotFoundError(f"There is no user {name}; an admin adds one with `cli.py users add {name} --role ROLE`.")
    return Actor(user.name, user.role)


def cmd_users(args: argparse.Namespace) -> int:
    from catalog import users
    from service import actions

    if args.action == "list":
        rows = users.list_users()
        _out(args, rows, "\n".join(f"{u.name:<24} {u.role:<7} {'password' if u.has_password else 'no password'}"
                                   + (f"  locked until {u.locked_until:%H:%M}" if u.locked_until else "")
                                   for u in rows) or "no users")
        return EXIT_OK
    if not args.name:
        raise SystemExit("give a user name")
    if args.action == "role":
        actions.set_role(cli_actor(args), args.name, args.role)
        _out(args, {"name": args.name, "role": args.role}, f"{args.name} is now a {args.role}")
        return EXIT_OK
    if args.action == "password":
        actions.set_password(cli_actor(args), args.name, _read_password(args))
        _out(args, {"name": args.name}, f"{args.name}'s password is changed and their sessions ended")
        return EXIT_OK
    if args.action == "signout":
        ended = actions.sign_out_user(cli_actor(args), args.name)
        _out(args, {"name": args.name, "sessions_ended": ended}, f"ended {ended} session(s) of {args.name}")
        return EXIT_OK
    password = _read_password(args) if not args.no_password else None
    user = actions.add_user(cli_actor(args), args.name, args.role, password)
    _out(args, user, f"added {user.name} ({user.role})")
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else typed twice at a prompt; never an argument."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def cmd_supervisor(args: argparse.Namespace) -> int:
    from backends.registry import apply_offline_environment
    from worker.supervisor import Supervisor

    apply_offline_environment()
    Supervisor().serve()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    # --json and --data-root work before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", default=argparse.SUPPRESS,
                        help=f"move the whole data root (default data/, or ${config.ROOT_ENV})")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument("--as", dest="as_user", metavar="NAME", default=argparse.SUPPRESS,
                        help="act as this catalog user, with their role (default: the shell user, as admin)")
    p = argparse.ArgumentParser(prog="cli.py", description="Model Catalog command line", parents=[common])
    sub = p.add_subparsers(dest="cmd", required=True)
    real_add = sub.add_parser
    sub.add_parser = lambda *a, **k: real_add(*a, parents=[common], **k)  # type: ignore[method-assign]

    from backends.registry import importable_kinds

    imp = sub.add_parser("import", help="import a model")
    imp.add_argument("path", nargs="?", help=f"{importable_kinds()}, on this server")
    imp.add_argument("--demo", action="store_true", help="the embedded SmolLM2-135M-Instruct GGUF")
    imp.add_argument("--example", choices=("smollm2", "minilm", "digits-cnn"),
                     help="an embedded example: the demo LLM, the all-MiniLM-L6-v2 encoder, or the digits CNN "
                          "(trained here in seconds)")
    imp.add_argument("--hub", metavar="REPO_ID", help="fetch from the Hugging Face Hub")
    imp.add_argument("--hf-cache", metavar="REPO_ID", help="a model from the local Hugging Face cache")
    imp.add_argument("--cache-dir", help="the cache folder (default: HF's)")
    imp.add_argument("--revision")
    imp.add_argument("--name")
    imp.add_argument("--tags", help="comma separated")
    imp.add_argument("--notes")
    imp.add_argument("--trust-remote-code", action="store_true")
    imp.add_argument("--queue", action="store_true", help="queue for the supervisor instead of running here")
    imp.set_defaults(fn=cmd_import)

    ls = sub.add_parser("list", help="list source models")
    ls.add_argument("--search")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(fn=cmd_list)

    show = sub.add_parser("show", help="show a source (s-...) or a variant (v-...)")
    show.add_argument("id")
    show.set_defaults(fn=cmd_show)

    ex = sub.add_parser("export", help="export a variant as a folder or zip")
    ex.add_argument("variant")
    ex.add_argument("dest")
    ex.add_argument("--zip", action="store_true")
    ex.set_defaults(fn=cmd_export)

    de = sub.add_parser("delete", help="delete a variant's files, keeping a tombstone")
    de.add_argument("variant")
    de.add_argument("--yes", action="store_true", help="delete even if other variants derive from it")
    de.set_defaults(fn=cmd_delete)

    jb = sub.add_parser("jobs", help="list, show, wait, cancel or retry jobs")
    jb.add_argument("action", choices=["list", "show", "wait", "cancel", "retry"])
    jb.add_argument("job", nargs="?")
    jb.add_argument("--limit", type=int, default=50)
    jb.add_argument("--wait", action="store_true", help="after retry, run it here and wait")
    jb.set_defaults(fn=cmd_jobs)

    be = sub.add_parser("bench", help="benchmark variants, export a source's results, bundle variants to run on "
                                      "another machine, or import a result measured elsewhere")
    be.add_argument("action", choices=["run", "export", "bundle", "import"])
    be.add_argument("ids", nargs="+", help="variant ids to run or bundle; one source id to export; the file to import "
                                           "(a device run's result.json, llama-bench or benchmark_app output)")
    be.add_argument("--variant", help="import: the variant an upstream report measured (default: matched by its file)")
    be.add_argument("--hashes-only", action="store_true",
                    help="bundle: leave the variants' files out (the device has them); only their hashes go")
    be.add_argument("--profile", choices=["quick", "full"])
    be.add_argument("--format", choices=["csv", "json"], default="csv")
    be.add_argument("--out", help="write the export, or the bundle (FILE.zip), to this file")
    be.add_argument("--queue", action="store_true", help="queue for the supervisor instead of running here")
    be.set_defaults(fn=cmd_bench)

    from bench.compare_export import EXPORT_FORMATS

    cm = sub.add_parser("comparisons", help="list saved comparisons, show one (verdict, gates, table), or export it "
                                            "as the Compare page does (HTML, PNG, CSV, JSON)")
    cm.add_argument("action", choices=["list", "show", "export"])
    cm.add_argument("id", nargs="?", help="the comparison's id (c-...)")
    cm.add_argument("dest", nargs="?", help="export: the folder to write into (default: here)")
    cm.add_argument("--format", nargs="+", choices=EXPORT_FORMATS,
                    help="export: which files (default: html csv json; png draws each chart in Chromium)")
    cm.add_argument("--search", help="list: by name or author")
    cm.add_argument("--limit", type=int, default=50)
    cm.set_defaults(fn=cmd_comparisons)

    us = sub.add_parser("users", help="list users, add one (the first admin too), change a role or a password, "
                                      "or sign a user out everywhere")
    us.add_argument("action", choices=["list", "add", "role", "password", "signout"])
    us.add_argument("name", nargs="?")
    us.add_argument("--role", choices=["viewer", "editor", "admin"], default="viewer")
    us.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    us.add_argument("--no-password", action="store_true",
                    help="a user who signs in through the proxy or OpenID Connect only")
    us.set_defaults(fn=cmd_users)

    sv = sub.add_parser("supervisor", help="run the job supervisor in the foreground")
    sv.set_defaults(fn=cmd_supervisor)

    from backends.cli_convert import add_convert_parser
    from service import actions

    add_convert_parser(sub, _wait, cli_actor, actions.convert, actions.check_conversion)
    return p


def main(argv: list[str] | None = None) -> int:
    from backends.registry import apply_offline_environment
    from catalog.errors import (
        CatalogError,
        ConflictError,
        InvalidInputError,
        NotFoundError,
        PermissionDeniedError,
        os_error_sentence,
    )

    logging.basicConfig(level=logging.WARNING)
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    apply_offline_environment()
    try:
        if getattr(args, "data_root", None):
            config.set_data_root(args.data_root)
        if hasattr(args, "as_user"):
            cli_actor(args)  # every command, reading ones too: --as names a user who exists
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        # The reader stopped reading (`| head`): no traceback, and nothing more is written.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except PermissionDeniedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DENIED
    except ConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    except (InvalidInputError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a folder the user named that cannot be written: one sentence, no traceback
        sentence = os_error_sentence(exc)
        if sentence is None:
            raise
        print(f"error: {sentence}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
