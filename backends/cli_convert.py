"""The CLI's convert command, its flags generated from the registry's declarations."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from backends.registry import Option, conversions

# (actor, conversion key, input variant id, raw options) -> the submissions
Submit = Callable[[Any, str, str, dict[str, Any]], list[Any]]
# the same arguments -> (planned steps, pre-flight problems), after every refusal Submit makes
Check = Callable[[Any, str, str, dict[str, Any]], tuple[list[Any], list[Any]]]


def _flag(opt: Option) -> str:
    return "--" + opt.name.replace("_", "-")


def _add_option(parser: argparse.ArgumentParser, opt: Option) -> None:
    shown = opt.default is not None and opt.default_from is None  # a default that depends says so in its help
    kwargs: dict[str, Any] = {"help": opt.help + (f" (default: {opt.default})" if shown else ""),
                              "dest": opt.name, "default": None}
    if opt.type == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif opt.type == "multichoice":
        kwargs.update(nargs="+", choices=opt.choices or None, metavar=opt.name.upper())
    elif opt.type == "choice" and not getattr(opt, "unverified", ()):
        # (a verified-choice option explains a refused value itself, better than argparse's "invalid choice")
        kwargs["choices"] = opt.choices
    elif opt.type in ("int", "float"):
        kwargs["type"] = int if opt.type == "int" else float
    parser.add_argument(_flag(opt), **kwargs)


def add_convert_parser(sub: Any, wait: Callable[[argparse.Namespace, str], int],
                       actor: Callable[[argparse.Namespace], Any], submit: Submit, check: Check) -> None:
    """submit is the service's convert (role check and audit row) and check its check_conversion
    (the same refusals, nothing queued), handed in by cli.py: a backend imports no service code."""
    conv_parser = sub.add_parser("convert", help="convert or quantize a variant (one sub-command per conversion)")
    conv_sub = conv_parser.add_subparsers(dest="conversion", required=True)
    for conv in conversions():
        p = conv_sub.add_parser(conv.key, help=conv.title, description=conv.help)
        p.add_argument("variant", help="input variant id (v-...) or source id (s-..., its own files)")
        for opt in conv.options:
            _add_option(p, opt)
        p.add_argument("--queue", action="store_true", help="queue for the supervisor instead of running here")
        p.add_argument("--check", action="store_true", help="only run the pre-flight checks")
        p.set_defaults(fn=lambda args, conv=conv: _run(args, conv, wait, actor(args), submit, check))


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    """JSON with --json, else the text (a conversion's plan, queued jobs and reused variants)."""
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def _run(args: argparse.Namespace, conv: Any, wait: Callable[[argparse.Namespace, str], int], actor: Any,
         submit: Submit, check: Check) -> int:
    from catalog.sources import get_source

    variant_id = args.variant
    if variant_id.startswith("s-"):
        variant_id = get_source(variant_id).root_variant_id
    raw = {o.name: getattr(args, o.name) for o in conv.options if getattr(args, o.name) is not None}
    if raw.get("calibration") not in (None, "", "shipped"):  # a path as typed, relative to where it was typed
        raw["calibration"] = os.path.abspath(raw["calibration"])
    steps, problems = check(actor, conv.key, variant_id, raw)  # what submit refuses, refused alike
    for p in problems:
        print(f"{p.level}: {p.message}", file=sys.stderr)
    if any(p.level == "error" for p in problems):
        return 2
    if args.check:
        _print(args, [{"variant_id": s.target_variant_id, "conversion": s.conversion.key, "options": s.options,
                       "exists": s.existing is not None} for s in steps],
               "\n".join(f"{s.target_variant_id} {s.conversion.key} {s.options}" + (" (exists)" if s.existing else "")
                         for s in steps))
        return 0
    subs = submit(actor, conv.key, variant_id, raw)
    rc = 0
    queued = []
    for sub in subs:
        if sub.variant is not None or args.queue:  # nothing to wait for here
            queued.append({"job_id": sub.job.id if sub.job else None,
                           "variant_id": sub.variant.id if sub.variant else None, "message": sub.message})
            if not getattr(args, "json", False):
                print(sub.message)
            continue
        rc = max(rc, wait(args, sub.job.id))
    if queued and getattr(args, "json", False):
        _print(args, queued, "")
    return rc
