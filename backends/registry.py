"""Every backend and conversion, declared as data. Importing this module imports no toolkit.

The Convert form and the CLI flags are generated from these declarations, and pre-flight
checks read them, so the UI, the CLI and the backends cannot disagree. A test checks the
declared choices (quant types, ...) against the installed toolkits themselves.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from catalog.errors import InvalidInputError


@dataclass(frozen=True)
class Option:
    name: str
    type: str                    # "choice" | "multichoice" | "bool" | "int" | "float" | "str" | "file"
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None

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
class Conversion:
    backend: str
    name: str
    title: str
    input_formats: tuple[str, ...]
    output_format: str
    options: tuple[Option, ...]
    packages: tuple[str, ...]       # import names the job needs
    module: str                     # backends.<toolkit>: validate_<name>, convert_<name>
    help: str = ""
    batch_option: str | None = None  # a multichoice option that fans out into one job per value
    # Rough resource model, in multiples of the input's size on disk.
    disk_factor: float = 2.0
    memory_factor: float = 3.0

    @property
    def key(self) -> str:
        return f"{self.backend}.{self.name}"

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    def normalize(self, raw: dict[str, Any]) -> dict[str, Any]:
        unknown = set(raw) - {o.name for o in self.options}
        if unknown:
            raise InvalidInputError(f"{self.title} has no option {sorted(unknown)[0]!r}.")
        return {o.name: o.normalize(raw.get(o.name)) for o in self.options}

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def hook(self, prefix: str) -> Any:
        """validate_<name> / convert_<name> from the backend module, imported on use."""
        return getattr(importlib.import_module(self.module), f"{prefix}_{self.name}", None)


@dataclass(frozen=True)
class Backend:
    name: str
    title: str
    runtime: str
    packages: tuple[str, ...]
    conversions: tuple[Conversion, ...] = field(default_factory=tuple)


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    BACKENDS[backend.name] = backend
    return backend


def conversions(input_format: str | None = None) -> list[Conversion]:
    _load_declarations()
    return [c for b in BACKENDS.values() for c in b.conversions
            if input_format is None or input_format in c.input_formats]


def get_conversion(key: str) -> Conversion:
    for conv in conversions():
        if conv.key == key:
            return conv
    raise InvalidInputError(f"There is no conversion {key!r}; see the Convert page for the list.")


def _load_declarations() -> None:
    # Declarations live beside each backend as plain data modules (no toolkit imports).
    for module in DECLARATION_MODULES:
        importlib.import_module(module)


DECLARATION_MODULES = ("backends.llamacpp_decl", "backends.onnxrt_decl")
