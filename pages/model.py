"""Model: one source model, its metadata, variants, lineage, files, notes, export and delete."""

from __future__ import annotations

import json

import streamlit as st

from backends.registry import unused_recipe_options
from catalog import bundle, jobs, sources, variants
from catalog.errors import CatalogError
from catalog.model_card import shown_recipe
from service import actions
from ui import fmt, nav
from ui.lineage import lineage_dot
from ui.session import current_actor, gate
from ui.variant_view import breakdown_chart, effective_types_chart, smoke_results, tool_record

source_id = st.query_params.get("id")
if not source_id:
    st.title("Model")
    st.info("Pick a model on the Catalog page; its page opens here.")
    nav.link("catalog", "Open the Catalog", icon=":material/inventory_2:")
    st.stop()

try:
    src = sources.get_source(source_id)
except CatalogError as exc:
    st.error(str(exc))
    st.stop()

st.title(fmt.escape_md(src.name))
st.caption(f"`{src.id}` · {src.origin_kind}: {fmt.escape_md(src.origin_ref or '–')}"
           + (f" @ {src.origin_revision[:12]}" if src.origin_revision else "")
           + f" · added {fmt.when(src.added_at)}" + (f" by {fmt.escape_md(src.added_by)}" if src.added_by else ""))


def made_elsewhere(provenance: dict[str, str]) -> str:
    """One sentence on where a GGUF with a catalog's provenance keys came from."""
    made = provenance["modelcatalog.variant"]
    recipe = provenance.get("modelcatalog.recipe")
    here = variants.find_variant(made)
    return (f"Made by a model catalog as variant `{made}` from `{provenance.get('modelcatalog.parent', '?')}`"
            + (f" (recipe: {recipe})" if recipe else "") + ". "
            + (f"That variant is also stored here, under source `{here.source_id}`, with other bytes."
               if here else "That variant is not stored in this catalog."))


root_files = variants.find_variant(src.root_variant_id) if src.root_variant_id else None
provenance = root_files.metadata.get("provenance") if root_files else None
if provenance and provenance.get("modelcatalog.variant"):
    st.info(made_elsewhere(provenance), icon=":material/history:")

# One line of facts, not five metric tiles: tiles cut "text-generation" to "text-gene…".
facts = {"Architecture": src.architecture, "Task": src.task, "Parameters": fmt.count(src.param_count),
         "Context": f"{src.context_length:,}" if src.context_length else None, "License": src.license}
st.markdown(" · ".join(f"**{k}** `{v or '–'}`" for k, v in facts.items()))

all_variants = variants.checked_family(variants.variants_of_source(src.id))

st.subheader("Lineage")
chosen = st.query_params.get("variant") or src.root_variant_id
st.graphviz_chart(lineage_dot(all_variants, highlight=chosen), width="content")

labels = {v.id: f"{v.label} · {v.state.replace('_', ' ')} · {v.id}" for v in all_variants}
ids = list(labels)
variant_id = st.selectbox("Variant", ids, index=ids.index(chosen) if chosen in ids else 0,
                          format_func=labels.get, key="variant_pick")
variant = variants.get_variant(variant_id)

tab_quality, tab_files, tab_recipe, tab_meta, tab_notes, tab_export, tab_delete = st.tabs(
    ["Smoke test & types", "Files", "Recipe", "Details", "Notes & tags", "Export", "Delete"])

with tab_quality:
    if "smoke" not in variant.metadata and "effective_types" not in variant.metadata:
        st.write("The source's own files: nothing to compare with.")
    effective_types_chart(variant)
    breakdown_chart(variant)
    tool_record(variant)
    smoke_results(variant)

with tab_files:
    st.dataframe([{"file": f.relpath, "size": fmt.size(f.size_bytes), "sha256": f.sha256}
                  for f in variant.files], hide_index=True, width="stretch")
    st.caption(f"{len(variant.files)} file(s), {fmt.size(variant.size_bytes)} · state: {variant.state}")

with tab_recipe:
    parent = variants.find_variant(variant.parent_id) if variant.parent_id else None
    made_by = jobs.find_job(variant.job_id) if variant.job_id else None
    st.markdown(f"**{variant.backend} · {variant.conversion}** from "
                + (f"`{parent.label}` ({parent.id})" if parent else "the imported files")
                + (f" · job `{made_by.id}`, submitted by {fmt.escape_md(made_by.submitted_by)}"
                   if made_by and made_by.submitted_by else ""))
    options, unused_note = shown_recipe(variant.options, unused_recipe_options(variant.backend, variant.conversion,
                                                                               variant.options))
    st.json({"options": options, "toolkit_versions": variant.toolkit_versions}, expanded=True)
    if unused_note:
        st.caption(unused_note)

with tab_meta:
    st.json(variant.metadata, expanded=False)

# What the form showed when its widgets were first drawn: Save applies only the user's changes
# to it, so tags and notes another user or an import saved meanwhile are kept.
notes_key, tags_key, shown_key = f"notes_text_{src.id}", f"tags_text_{src.id}", f"notes_shown_{src.id}"
if notes_key not in st.session_state:
    st.session_state[shown_key] = (src.notes, list(src.tags))
with tab_notes, st.form("notes"):
    notes = st.text_area("Notes", value=src.notes, height=120, key=notes_key)
    tags = st.text_input("Tags (comma separated)", value=", ".join(src.tags), key=tags_key)
    if st.form_submit_button("Save", **gate("edit_notes")):
        wanted = [t.strip() for t in tags.split(",")]
        shown_notes, shown_tags = st.session_state[shown_key]
        try:
            saved = actions.edit_notes(current_actor(), src.id, shown_notes=shown_notes, notes=notes,
                                       shown_tags=shown_tags, tags=wanted)
            st.session_state[shown_key] = (notes, wanted)  # the form now shows the user's own values
            others = sorted(set(saved.tags) - {t for t in wanted if t})
            st.success("Saved." + (f" Tags others added meanwhile were kept: {', '.join(others)}." if others else ""))
        except CatalogError as exc:
            st.error(str(exc))

with tab_export:
    st.write("A zip with every file a runtime needs, a manifest (sha256, recipe, versions, lineage) "
             "and a run snippet.")
    if variant.state == "available" and st.button("Prepare zip", key="export"):
        with st.spinner("Packing and verifying files…"):
            try:
                path = actions.export_variant(current_actor(), variant.id)
                st.download_button("Download " + path.name, data=path.read_bytes(), file_name=path.name,
                                   mime="application/zip", on_click="ignore")
            except CatalogError as exc:
                st.error(str(exc))
    if st.toggle("Show the manifest", key="show_manifest"):
        st.code(json.dumps(bundle.manifest(variant.id), indent=2, default=str)[:4000], language="json")

with tab_delete:
    live = [d for d in variants.descendants(variant.id) if d.state != "deleted"]
    if variant.state == "deleted":
        st.info("This variant was deleted; its row stays so lineage still renders.")
    else:
        if live:
            st.warning(f"{len(live)} variant(s) derive from this one: "
                       + ", ".join(f"{d.label} ({d.id})" for d in live)
                       + ". They keep their own files; their lineage will show this one as deleted.")
        confirm = st.checkbox("I understand the files are removed", key="confirm_delete")
        if st.button("Delete variant files", type="primary", **gate("delete", disabled=not confirm)):
            try:
                actions.delete_variant(current_actor(), variant.id)
                st.success("Deleted; the tombstone keeps its place in the lineage.")
                st.rerun()
            except CatalogError as exc:
                st.error(str(exc))
