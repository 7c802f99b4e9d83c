"""Form widgets generated from the registry's option declarations: the one renderer of an option."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from backends.registry import Conversion, Option
from catalog.errors import CatalogError


def option_widget(opt: Option, key_prefix: str, preset: Any = None, label: str | None = None) -> Any:
    """The one widget for a declared option (a conversion's on the Convert form, a runner's on the
    Benchmarks page), chosen by its type; label defaults to the option's name."""
    key = f"{key_prefix}_{opt.name}"
    label = label or opt.name.replace("_", " ")
    if preset is not None:
        opt = replace(opt, default=preset)
    if opt.default_from is not None:
        # Streamlit keeps a keyed widget's value when its default changes (the key is its
        # identity), so a default computed from other options is part of the key: choosing HQQ
        # makes a fresh checkbox showing HQQ's default instead of keeping RTN's.
        key = f"{key}_{opt.default}"
    if opt.type == "multichoice":
        return st.multiselect(label, opt.choices, default=opt.default, help=opt.help, key=key)
    if opt.type == "choice":
        return st.selectbox(label, opt.choices, index=opt.choices.index(opt.default), help=opt.help, key=key)
    if opt.type == "bool":
        return st.checkbox(label, value=bool(opt.default), help=opt.help, key=key)
    if opt.type == "int":
        return st.number_input(label, value=int(opt.default), step=1, help=opt.help, key=key,
                               min_value=int(opt.minimum) if opt.minimum is not None else None,
                               max_value=int(opt.maximum) if opt.maximum is not None else None)
    if opt.type == "float":
        return st.number_input(label, value=float(opt.default), step=0.05, help=opt.help, key=key,
                               min_value=float(opt.minimum) if opt.minimum is not None else None,
                               max_value=float(opt.maximum) if opt.maximum is not None else None)
    if opt.type == "text":  # several lines, e.g. a configuration file pasted in
        if opt.examples and preset is None:
            titles = [title for title, _ in opt.examples]
            picked = st.selectbox(f"{label}: start from an example", titles, key=f"{key}_example")
            index = titles.index(picked)
            # a keyed text area keeps what it holds: each example gets its own key, so picking
            # another one shows it (and an edit of the first is not lost when switching back)
            return st.text_area(label, value=opt.examples[index][1], help=opt.help, key=f"{key}_{index}", height=260)
        return st.text_area(label, value=str(opt.default or ""), help=opt.help, key=key, height=200)
    return st.text_input(label, value=str(opt.default or ""), help=opt.help, key=key)


def presets(conv: Conversion) -> dict[str, Any]:
    """Option values preset by the page's link (?o_weight_format=int8): a recipe can be shared as a
    URL. A value the option refuses is ignored, and the form shows the declared default."""
    found = {}
    for opt in conv.options:
        raw = st.query_params.get_all(f"o_{opt.name}")
        if not raw:
            continue
        try:
            found[opt.name] = opt.normalize(raw if opt.type == "multichoice" else raw[0])
        except CatalogError:
            continue
    return found


def computed_default(conv: Conversion, opt: Option, chosen: dict[str, Any]) -> Any:
    """The value the service gives `opt` when it is left out, from the values chosen so far:
    Conversion.normalize itself (what plan and submit call), so the form cannot show a default
    the service would not use. Options not chosen yet take their declared defaults."""
    given = {name: value for name, value in chosen.items() if name != opt.name}
    try:
        return conv.normalize(given)[opt.name]
    except CatalogError:  # a value the service refuses: its plan says why; show the plain default
        return opt.default


def conversion_form(conv: Conversion, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """One widget per declared option (except `skip`), in declaration order, so an option whose
    default depends on others (Option.default_from) follows them; returns the raw values."""
    values: dict[str, Any] = {}
    preset = presets(conv)
    cols = st.columns(2)
    for i, opt in enumerate(o for o in conv.options if o.name not in skip):
        default = preset.get(opt.name)
        if default is None and opt.default_from is not None:
            default = computed_default(conv, opt, {**preset, **values})
        with cols[i % 2]:
            values[opt.name] = option_widget(opt, conv.key, default)
            refused = getattr(opt, "unverified", ())
            if refused:  # what this machine cannot do is shown, with what it would take
                st.caption("Not offered here: " + "; ".join(f"**{value}**: {why}" for value, why in refused) + ".")
    return values
