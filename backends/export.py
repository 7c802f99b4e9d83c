"""A variant exported with the texts its toolkit gives it: the run snippet (RUN.md) and the Hub
library of its model card, read from the registry; the files, manifest and checks are
catalog/bundle.py's."""

from __future__ import annotations

from pathlib import Path

from backends.registry import get_format, how_to_run, unused_recipe_options
from catalog import bundle
from catalog.sources import get_source
from catalog.variants import get_variant


def export_variant(variant_id: str, dest: Path, as_zip: bool = False) -> Path:
    """The variant's folder (or zip) under dest, with manifest.json, README.md and RUN.md."""
    variant = get_variant(variant_id)
    task = get_source(variant.source_id).task
    return bundle.write_export(variant_id, dest, how_to_run(variant, task), get_format(variant.format).hub_library,
                               as_zip=as_zip,
                               unused=unused_recipe_options(variant.backend, variant.conversion, variant.options))


def export_to_downloads(variant_id: str) -> Path:
    """A zip under the data root's exports folder, for the browser's download button."""
    return export_variant(variant_id, bundle.downloads_dir(), as_zip=True)
