"""Every toolkit, format and conversion, declared as data. Importing this module imports no toolkit.

A toolkit lives in its own package, backends/<toolkit>/, whose `declaration` module holds a
`TOOLKIT` record: its packages, the formats it owns (how to find a variant's main file, which
runner loads it, how to run it elsewhere, how an import is recognised and described) and its
conversions (options, quality gate, and explicit references to its hooks). Built-in toolkits are
registered the same way an outside one would be (`register_toolkit`), listed in DEFAULT_TOOLKITS
as datasette lists its built-in plugins.

The Convert form and the CLI flags are generated from these declarations, and pre-flight
checks read them, so the UI, the CLI and the backends cannot disagree. Shared code never names a
toolkit or a format: it asks this registry.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInputError

# The one line per built-in toolkit. An outside toolkit's declaration module is named by an entry
# point in the group below (its package's metadata), or in the environment variable (a comma-separated
# list, e.g. for a toolkit still in a work folder); either way no shared code changes.
TOOLKIT_ENTRY_POINTS = "model_catalog.toolkits"
TOOLKITS_ENV = "MODEL_CATALOG_TOOLKITS"
DEFAULT_TOOLKITS = ("backends.hf.declaration", "backends.llamacpp.declaration", "backends.onnxrt.declaration",
                    "backends.mlx.declaration", "backends.olive.declaration",
                    "backends.openvino.declaration", "backends.qnn.declaration")

# Execution targets a conversion or a runner is for. Only "cpu" runs on this project's machines;
# the rest name what another machine would need (see each declaration's notes).
RUNS_ON = ("cpu", "nvidia-gpu", "intel-gpu", "intel-npu", "apple-metal", "qnn-htp")

@dataclass(frozen=True)
class Option:
    name: str
    type: str                    # "choice" | "multichoice" | "bool" | "int" | "float" | "str" | "text" | "file"
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    # The default when the value is not given, from the other options' normalized values (a bool
    # whose right default depends on the algorithm chosen); None: `default` always.
    default_from: Callable[[dict[str, Any]], Any] | None = None
    # Whether the value took part in a recipe with these (normalized) options; None: always. A
    # calibration text that no data-aware step read is left out of job titles and shown as unused
    # in recipes, so "calibration=shipped" never claims a calibration that did not run.
    used_if: Callable[[dict[str, Any]], bool] | None = None
    # The Convert page's label for its upload widget, for an option given as an uploaded file.
    upload_label: str = ""
    # Worked examples a "text" option's form offers to start from: (title, text); the first is
    # the default.
    examples: tuple[tuple[str, str], ...] = ()

    def used(self, options: dict[str, Any]) -> bool:
        return self.used_if is None or bool(self.used_if(options))

    def normalize(self, value: Any) -> Any:
        """Coerce a form or CLI value to the declared type; InvalidInputError if impossible."""
        if value is None or value == "":
            return self.default
        try:
            if self.type == "bool":
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            if self.type == "int":
                value = int(value)
            elif self.type == "float":
                value = float(value)
            elif self.type == "multichoice":
                value = [value] if isinstance(value, str) else list(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"Option {self.name} must be of type {self.type}; got {value!r}.") from None
        values = value if isinstance(value, list) else [value]
        if self.choices and self.type in ("choice", "multichoice"):
            bad = [v for v in values if v not in self.choices]
            if bad:
                raise InvalidInputError(
                    f"{bad[0]!r} is not a valid {self.name}; choose one of {', '.join(self.choices)}.")
        for v in values:
            if self.minimum is not None and isinstance(v, int | float) and v < self.minimum:
                raise InvalidInputError(f"Option {self.name} must be at least {self.minimum}.")
            if self.maximum is not None and isinstance(v, int | float) and v > self.maximum:
                raise InvalidInputError(f"Option {self.name} must be at most {self.maximum}.")
        return value


@dataclass(frozen=True)
class VerifiedChoice(Option):
    """A choice whose values outside the allow-list are refused as "not verified here"."""

    unverified: tuple[tuple[str, str], ...] = ()   # value -> what was seen when it was tried

    def normalize(self, value: Any) -> Any:
        if value in (None, ""):
            return super().normalize(value)
        value = str(value).strip().lower()
        if value not in self.choices:
            why = dict(self.unverified).get(value, "it has not been tried")
            raise InvalidInputError(f"The {self.name.replace('_', ' ')} {value} is not verified here on the CPU: "
                                    f"{why}; choose one of {', '.join(self.choices)}.")
        return super().normalize(value)


@dataclass(frozen=True)
class Gate:
    """The least value of one quality metric a result must reach: a converted variant below its
    conversion's gate is not published, and the Compare page reads the same objects."""

    metric: str        # e.g. "top1_agreement", "cosine_mean", "quality_retention"
    minimum: float
    hint: str = ""     # what to try when a result falls below it
    # Held-out inputs an encoder/classifier smoke test runs (0: the smoke test's own number). A
    # simulator a hundred times slower than the CPU (the QNN HTP on x86_64) runs fewer.
    samples: int = 0

    def passes(self, value: float | None) -> bool:
        return value is not None and not math.isnan(value) and value >= self.minimum


GateRule = Gate | Callable[[dict[str, Any], Any], Gate]  # or (options, parent variant) -> Gate
Hook = Callable[..., Any]


@dataclass(frozen=True)
class Conversion:
    backend: str                    # the toolkit's name (kept as "backend": it is part of every variant id)
    name: str
    title: str
    input_formats: tuple[str, ...]
    output_format: str
    options: tuple[Option, ...]
    packages: tuple[str, ...]       # import names the job needs
    convert: Hook                   # (ctx, parent, parent_main_file, out_dir, options, extras) -> ConversionOutput
    gate: GateRule | None = None    # None only for outputs that are not models (an importance matrix)
    validate: Hook | None = None    # (variant, options) -> list[Problem]
    plan: Hook | None = None        # (variant, options) -> list[Step]; default: one step (or one per batch value)
    runs_on: str = "cpu"
    help: str = ""
    batch_option: str | None = None  # a multichoice option that fans out into one job per value
    # The options whose values name a variant in job titles and plans (e.g. a quantization type),
    # in the order the options are declared; the others are recipe detail.
    label_options: tuple[str, ...] = ()
    # What it did to its input, as lineage sentences say it ("hf F32, dequantized from gguf Q4_1");
    # "" reads "converted from".
    past: str = ""
    # Rough resource model, in multiples of the input's size on disk.
    disk_factor: float = 2.0
    memory_factor: float = 3.0

    def __post_init__(self) -> None:
        unknown = set(self.label_options) - {o.name for o in self.options}
        if unknown:  # a typo here would silently drop the value from every job title
            raise ValueError(f"{self.backend}.{self.name}: label_options names no option {sorted(unknown)[0]!r}")

    @property
    def key(self) -> str:
        return f"{self.backend}.{self.name}"

    def label_detail(self, options: dict[str, Any]) -> str:
        """The label options' values that took part, e.g. "types=IQ2_XXS, calibration=shipped" ("" if
        none): an option these options leave unused (Option.used_if) names nothing."""
        unused = set(self.unused_options(options))
        return ", ".join(f"{k}={v if not isinstance(v, list) else '+'.join(map(str, v))}"
                         for k, v in options.items() if k in self.label_options and k not in unused)

    def unused_options(self, options: dict[str, Any]) -> list[str]:
        """The options a recipe with these values never read (e.g. a calibration text where no
        data-aware step ran); they stay in the recipe, since the variant's identity includes them."""
        return [o.name for o in self.options if o.name in options and not o.used(options)]

    def step_title(self, options: dict[str, Any]) -> str:
        """A planned step's job title: the short title and its label options, e.g.
        "GGUF → quantized GGUF [types=Q8_0, calibration=shipped]"."""
        return f"{self.title.split(' (')[0]} [{self.label_detail(options)}]"

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        unknown = set(raw) - {o.name for o in self.options}
        if unknown:
            raise InvalidInputError(f"{self.title} has no option {sorted(unknown)[0]!r}.")
        options = {o.name: o.normalize(raw.get(o.name)) for o in self.options}
        for o in self.options:
            if o.default_from is not None and raw.get(o.name) in (None, ""):
                options[o.name] = o.default_from(options)
        return options

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def gate_for(self, options: dict[str, Any], parent: Any) -> Gate | None:
        """The gate this job's result must pass (some depend on the options, e.g. the bits per weight)."""
        if self.gate is None or isinstance(self.gate, Gate):
            return self.gate
        return self.gate(options, parent)


@dataclass(frozen=True)
class ImportCheck:
    """How an import is recognised as this format, checked before a job exists, and described."""

    recognise: Callable[[Path], bool]                 # is this file or folder in this format?
    check: Callable[[Path], Path]                     # one sentence on bad input; returns the path to import
    # (staged, meta, recipe) -> (meta, format, precision, extra facts)
    describe: Callable[..., tuple[Any, str, str, dict[str, Any]]]
    # A file this format needs whose name alone looks like a pickle (an IR's .bin): not skipped.
    keeps: Callable[[Path], bool] | None = None
    # (snapshot, repo id) -> None: a snapshot of the local Hugging Face cache (its files are links
    # into the cache's blob store), with sentences naming it by its repo id. The fallback format's.
    check_snapshot: Callable[[Path, str], Any] | None = None


@dataclass(frozen=True)
class ReportReader:
    """A report of an upstream benchmark tool this format's toolkit reads (bench.upstream_reports).

    read(text) -> the report as {"tool", "version", "machine", "model", "metrics", "tests"}, or
    None when the text is not this tool's; InvalidInputError when it is, but malformed.
    mismatch(report, variant, source) -> one sentence when the report measured another model."""

    tool: str
    read: Callable[[str], dict[str, Any] | None]
    mismatch: Callable[[dict[str, Any], Any, Any], str | None]


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    main_suffix: str | None             # the file a runtime opens has this suffix; None: the folder
    runtime: str                        # shown to users, e.g. "ONNX Runtime"
    runtime_imports: tuple[str, ...]    # what its runners import (a speed run imports them first, to count them)
    runtime_versions: Callable[[], dict[str, str]] = dict  # what its runners' outputs depend on
    open_runner: Hook | None = None     # causal LMs: (path, threads, n_ctx, all_logits) -> Runner
    open_encoder_classifier: Hook | None = None  # (path, task, threads) -> EncoderClassifierRunner
    # Benchmark options of its encoder/classifier runner (e.g. a performance hint), passed to
    # open_encoder_classifier as keywords. A value other than the default is recorded in the
    # result's fingerprint, so results measured another way are never compared unawares.
    runtime_options: tuple[Option, ...] = ()
    run_snippets: dict[str, str] = field(default_factory=dict)  # by source task; "" for any task
    import_check: ImportCheck | None = None
    import_as: str = ""                 # how the Import page names what to give, e.g. "a .gguf file"
    upload_suffixes: tuple[str, ...] = ()  # what the Import page's uploader accepts for this format
    runs_on: tuple[str, ...] = ("cpu",)
    hub_library: str = ""               # the Hugging Face Hub's library_name for an exported model card
    hub_patterns: tuple[str, ...] = ()  # the files of a Hub repository an import fetches for this format
    # What its runners add to a benchmark result's fingerprint (e.g. how the runtime was built):
    # () -> {key: value}, recorded with that format's results only.
    fingerprint_fields: Callable[[], dict[str, Any]] | None = None
    # Reports of the runtime's own benchmark tool that an import reads (bench.upstream_reports).
    report_readers: tuple[ReportReader, ...] = ()
    # A device-run bundle's runner for this format: a standalone script (the runtime package and
    # the standard library only) copied into the bundle (bench.device_bundle).
    bundle_runner: Path | None = None
    # The same for its encoder/classifier runner: a standalone script with import_runtime() and
    # load(path, task, threads) giving the EncoderClassifierRunner interface.
    encoder_classifier_bundle_runner: Path | None = None
    # Facts of a variant's metadata a bundle carries to the device and back into the device run's
    # fingerprint (e.g. the HTP architecture and SDK a context binary was compiled for).
    bundle_facts: tuple[str, ...] = ()
    # What a teammate running a bundle of this format should know (e.g. a consent file its runtime
    # reads besides the environment the bundle sets), printed in the bundle's README.
    bundle_note: str = ""
    # Encoder/classifier benchmark protocol fields its runners change, by (task, profile), e.g.
    # fewer repetitions on a simulator many times slower than the CPU. The changed protocol has
    # its own id, so its results are never compared with others' unawares.
    protocol_changes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    @property
    def is_model(self) -> bool:
        """A format some runner loads; the others (an importance matrix) are data for conversions."""
        return self.open_runner is not None or self.open_encoder_classifier is not None

    def main_file(self, folder: Path, relpaths: list[str]) -> Path:
        """The file a runtime opens (the one file with main_suffix), else the variant's folder."""
        if self.main_suffix:
            hits = [r for r in relpaths if r.endswith(self.main_suffix)]
            if len(hits) == 1:
                return folder / hits[0]
        return folder

    def run_snippet(self, task: str | None, main: str) -> str:
        snippet = self.run_snippets.get(task or "", self.run_snippets.get("", ""))
        return snippet.format(main=main)


@dataclass(frozen=True)
class SetupStep:
    """A post-install step setup runs for a toolkit (`python -m backends.setup_steps`). `done` is
    checked first, so a warm setup runs nothing; `run` makes `done` true."""

    title: str                       # logged when it runs, e.g. "opting out of OpenVINO telemetry"
    done: Callable[[], bool]
    run: Callable[[], None]


@dataclass(frozen=True)
class Toolkit:
    name: str
    title: str
    runtime: str
    packages: tuple[str, ...]           # import names
    distributions: tuple[str, ...]      # what its recorded toolkit versions are read from
    formats: tuple[Format, ...] = ()
    conversions: tuple[Conversion, ...] = ()
    # Crash reports: the import name of each native library -> how users know it, and the
    # progress prefixes of its steps ("model builder: ...") -> what they are called.
    libraries: tuple[tuple[str, str], ...] = ()
    steps: tuple[tuple[str, str], ...] = ()
    # Environment variables that keep this toolkit off the network and its telemetry off, set in
    # every process before any of its modules is imported (see offline_environment).
    offline_env: tuple[tuple[str, str], ...] = ()
    setup_steps: tuple[SetupStep, ...] = ()

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in self.distributions:
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                out[dist] = "missing"
        return out


TOOLKITS: dict[str, Toolkit] = {}


def register_toolkit(toolkit: Toolkit) -> Toolkit:
    TOOLKITS[toolkit.name] = toolkit
    # Registering comes before any hook of the toolkit runs (hooks import it), so a process that
    # loads a declaration (a job child, a speed run it starts) is offline before the toolkit loads.
    for key, value in toolkit.offline_env:
        os.environ.setdefault(key, value)
    return toolkit


def toolkits() -> list[Toolkit]:
    _load_defaults()
    return list(TOOLKITS.values())


def crash_vocabulary() -> tuple[dict[str, str], dict[str, str]]:
    """Every toolkit's native libraries and step names, for crash reports."""
    libraries: dict[str, str] = {}
    steps: dict[str, str] = {}
    for t in toolkits():
        libraries.update(t.libraries)
        steps.update(t.steps)
    return libraries, steps


def offline_environment() -> dict[str, str]:
    """Every variable that keeps the catalog offline: the generic ones (catalog.config) and each
    declared toolkit's own."""
    from catalog import config

    env = config.offline_environment()
    for t in toolkits():
        env.update(t.offline_env)
    return env


def apply_offline_environment() -> None:
    """What the entry points (app, CLI, scripts) call first; variables already set are kept."""
    for key, value in offline_environment().items():
        os.environ.setdefault(key, value)


def hub_patterns() -> list[str]:
    """The files an import from the Hugging Face Hub fetches: every format's own, in declaration order."""
    return list(dict.fromkeys(p for f in formats() for p in f.hub_patterns))


def protocol_changes(fmt: str, task: str, profile: str) -> dict[str, int]:
    """The benchmark protocol fields this format changes for a task and profile ({} for most)."""
    return dict(get_format(fmt).protocol_changes.get((task, profile), {}))


def fingerprint_fields(fmt: str) -> dict[str, Any]:
    """What this format's runners add to a result's fingerprint ({} for most)."""
    hook = get_format(fmt).fingerprint_fields
    return hook() if hook is not None else {}


def report_readers() -> list[tuple[Format, ReportReader]]:
    """Every declared upstream report reader, with the format whose variants it measures."""
    return [(f, r) for f in formats() for r in f.report_readers]


def conversions(input_format: str | None = None) -> list[Conversion]:
    return [c for t in toolkits() for c in t.conversions
            if input_format is None or input_format in c.input_formats]


def get_conversion(key: str) -> Conversion:
    for conv in conversions():
        if conv.key == key:
            return conv
    raise InvalidInputError(f"There is no conversion {key!r}; see the Convert page for the list.")


def unused_recipe_options(backend: str, conversion: str, options: dict[str, Any]) -> list[str]:
    """The options of a variant's recipe that no step read (Conversion.unused_options); none for
    an import or a conversion no longer registered."""
    try:
        return get_conversion(f"{backend}.{conversion}").unused_options(options)
    except InvalidInputError:
        return []


def made_how(backend: str, conversion: str) -> str:
    """How a variant was made from its parent, in words: "dequantized", "quantized", "converted"."""
    try:
        return get_conversion(f"{backend}.{conversion}").past or "converted"
    except InvalidInputError:
        return "converted"


def formats() -> list[Format]:
    return [f for t in toolkits() for f in t.formats]


def get_format(name: str) -> Format:
    for fmt in formats():
        if fmt.name == name:
            return fmt
    raise InvalidInputError(f"No installed toolkit knows the format {name!r}; the catalog may have been "
                            "written by a version with more toolkits.")


def toolkit_versions(name: str) -> dict[str, str]:
    """The versions recorded with a conversion of this toolkit (an unknown toolkit records none)."""
    return TOOLKITS[name].versions() if name in {t.name for t in toolkits()} else {}


def main_file(variant: Any) -> Path:
    """The file a runtime opens for a variant: its format's main file, else its folder."""
    from catalog.variants import variant_path

    return get_format(variant.format).main_file(variant_path(variant), [f.relpath for f in variant.files])


def how_to_run(variant: Any, task: str | None) -> str:
    """A Python snippet that runs the variant where it is exported (its main file named relatively)."""
    fmt = get_format(variant.format)
    main = fmt.main_file(Path("."), [f.relpath for f in variant.files])
    return fmt.run_snippet(task, str(main) if main != Path(".") else ".")


def open_runner(fmt: str, path: Path, threads: int = 2, n_ctx: int = 1024, all_logits: bool = True) -> Any:
    """A causal-LM runner for a format; its toolkit is imported only now. all_logits=False for
    speed and memory runs: keeping logits for every position costs n_ctx x vocab floats (200 MB
    for SmolLM2 at 1,024 tokens), which is not the model's cost."""
    opener = get_format(fmt).open_runner
    if opener is None:
        raise ValueError(f"No runner can load {fmt} text-generation models yet.")
    return opener(path, threads=threads, n_ctx=n_ctx, all_logits=all_logits)


def open_encoder_classifier(fmt: str, path: Path, task: str, threads: int = 2, **runtime_options: Any) -> Any:
    """runtime_options: the format's benchmark options away from their default (e.g. the QNN
    provider), so quality is measured where the speed was."""
    opener = get_format(fmt).open_encoder_classifier
    if opener is None:
        raise ValueError(f"No runner can load {fmt} {task} models yet.")
    return opener(path, task, threads, **runtime_options)


def runtime_options(encoder_classifier: bool = True) -> list[tuple[Format, Option]]:
    """Every benchmark option the runners of this kind declare, with the format that declares it."""
    running = formats_running(encoder_classifier)
    return [(f, opt) for f in formats() if f.name in running for opt in f.runtime_options]


def runtime_options_for(fmt: str, chosen: dict[str, Any]) -> dict[str, Any]:
    """The chosen benchmark options this format's runner takes, normalized, without those at their
    default: a run at the defaults is the same run as one submitted before an option existed (same
    recipe, same fingerprint). Options no runner declares are refused; other formats' are left out."""
    known = {opt.name for _, opt in runtime_options()}
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise InvalidInputError(f"No runner takes the benchmark option {unknown[0]!r}; the options are "
                                f"{', '.join(sorted(known)) or 'none'}.")
    out = {}
    for opt in get_format(fmt).runtime_options:
        value = opt.normalize(chosen.get(opt.name))
        if value != opt.default:
            out[opt.name] = value
    return out


def formats_running(encoder_classifier: bool) -> tuple[str, ...]:
    """Formats with a runner of this kind, i.e. the ones a benchmark can measure."""
    attr = "open_encoder_classifier" if encoder_classifier else "open_runner"
    return tuple(f.name for f in formats() if getattr(f, attr) is not None)


# The Hugging Face folder: what an import that no toolkit claims is checked as, and the baseline
# every benchmark compares against (run by the PyTorch reference).
FALLBACK_IMPORT_FORMAT = REFERENCE_FORMAT = "hf"


def recognise_import(path: Path) -> Format:
    """The format of a file or folder to import: the first toolkit's check that claims it; the
    Hugging Face folder is the fallback every other check is tried before."""
    for fmt in formats():
        if fmt.name != FALLBACK_IMPORT_FORMAT and fmt.import_check is not None and fmt.import_check.recognise(path):
            return fmt
    return get_format(FALLBACK_IMPORT_FORMAT)


def needed_by_a_format(path: Path) -> bool:
    """Whether a file a pickle-looking name would make an import leave behind is a format's own."""
    return any(f.import_check is not None and f.import_check.keeps is not None and f.import_check.keeps(path)
               for f in formats())


def check_hub_snapshot(snapshot: Path, repo_id: str) -> None:
    """One sentence if a snapshot of the local Hugging Face cache cannot be imported."""
    check = get_format(FALLBACK_IMPORT_FORMAT).import_check
    if check is not None and check.check_snapshot is not None:
        check.check_snapshot(snapshot, repo_id)


def importable_kinds() -> str:
    """What an import may be, in words: "a .gguf file, a .onnx file or a folder with ..."."""
    kinds = [f.import_as for f in formats() if f.import_check is not None and f.import_as
             and f.name != FALLBACK_IMPORT_FORMAT] + [get_format(FALLBACK_IMPORT_FORMAT).import_as]
    return ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]


def upload_suffixes() -> tuple[str, ...]:
    """File suffixes the Import page's uploader accepts: every format's own, and its companions."""
    return tuple(dict.fromkeys(s for f in formats() for s in f.upload_suffixes))


def runner_reference(fmt: str, encoder_classifier: bool = False) -> dict[str, Any]:
    """What a speed-run process needs to open this format's runner without loading the registry
    (whose declarations would add their imports to the memory it measures)."""
    f = get_format(fmt)
    opener = f.open_encoder_classifier if encoder_classifier else f.open_runner
    if opener is None:
        raise ValueError(f"No runner can load {fmt} models of this kind yet.")
    return {"runtime_imports": list(f.runtime_imports), "runner": f"{opener.__module__}:{opener.__qualname__}"}


def resolve_runner(reference: str) -> Callable[..., Any]:
    """The opener runner_reference named ("module:function"); AttributeError if it is gone."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _load_defaults() -> None:
    # Declarations import their toolkit's modules, which import no toolkit package until used.
    extra = [m.strip() for m in os.environ.get(TOOLKITS_ENV, "").split(",") if m.strip()]
    for module in (*DEFAULT_TOOLKITS, *_entry_point_modules(), *extra):
        importlib.import_module(module)


@functools.cache
def _entry_point_modules() -> tuple[str, ...]:
    """Declaration modules installed packages name (read once: scanning the metadata takes time)."""
    return tuple(ep.value.partition(":")[0] for ep in importlib.metadata.entry_points(group=TOOLKIT_ENTRY_POINTS))
