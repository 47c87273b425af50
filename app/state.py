"""View state in the URL (st.query_params), so a shared link reopens the same view.

Parameters (all optional): w (weights), base (compare baseline), view, colour, cls, labels,
age ('lo-hi'), sex, ds (datasets), fold, sel (selection regions), rec (previewed record),
review ('1'), run, epoch, label. Selections travel as geometry, not record ids: a box
'b:x0,x1,y0,y1' or a lasso 'l:x1,y1,x2,y2,...', regions joined by ';'. The selection is
recomputed over the full set when the link is opened, and the URL carries no identifier.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

MAX_LASSO_VERTICES = 200
MAX_REGIONS = 20                 # a link with more regions than this is refused
MAX_SELECTION_CHARS = 40_000     # ... and so is a selection text longer than this (checked before parsing)


def _fmt(v: float) -> str:
    return f"{float(v):.4g}"


def encode_selection(selection: dict | None) -> str:
    """Box and lasso regions of a plotly selection state as a short URL string ('' when none)."""
    if not selection:
        return ""
    parts = []
    for box in selection.get("box") or []:
        parts.append("b:" + ",".join(_fmt(v) for v in (*box["x"][:2], *box["y"][:2])))
    for lasso in selection.get("lasso") or []:
        xs, ys = list(lasso["x"]), list(lasso["y"])
        step = max(1, len(xs) // MAX_LASSO_VERTICES)  # keep URLs short; a coarser lasso is fine
        parts.append("l:" + ",".join(f"{_fmt(x)},{_fmt(y)}" for x, y in zip(xs[::step], ys[::step])))
    return ";".join(parts)


def decode_selection(text: str | None) -> dict:
    """Inverse of encode_selection; raises ValueError naming the bad region.

    Hostile links are bounded: at most MAX_REGIONS regions and MAX_SELECTION_CHARS characters,
    finite numbers only, and a lasso is thinned to at most MAX_LASSO_VERTICES vertices, so a
    huge lasso costs nothing on every rerun.
    """
    out: dict[str, list] = {"box": [], "lasso": []}
    text = text or ""
    if len(text) > MAX_SELECTION_CHARS:
        raise ValueError(f"selection of {len(text)} characters: longer than {MAX_SELECTION_CHARS}")
    parts = [p for p in text.split(";") if p]
    if len(parts) > MAX_REGIONS:
        raise ValueError(f"selection of {len(parts)} regions: more than {MAX_REGIONS}")
    for part in parts:
        kind, _, numbers = part.partition(":")
        shown = part if len(part) <= 40 else part[:37] + "..."
        try:
            values = [float(v) for v in numbers.split(",")]
        except ValueError:
            raise ValueError(f"selection region {shown!r}: not a list of numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"selection region {shown!r}: numbers must be finite")
        if kind == "l" and len(values) % 2 == 0 and len(values) // 2 > MAX_LASSO_VERTICES:
            step = -(-(len(values) // 2) // MAX_LASSO_VERTICES)
            values = [v for i in range(0, len(values), 2 * step) for v in values[i:i + 2]]
        part = shown
        if kind == "b" and len(values) == 4:
            out["box"].append({"x": values[:2], "y": values[2:]})
        elif kind == "l" and len(values) >= 6 and len(values) % 2 == 0:
            out["lasso"].append({"x": values[0::2], "y": values[1::2]})
        else:
            raise ValueError(f"selection region {part!r}: expected 'b:x0,x1,y0,y1' or 'l:x1,y1,x2,y2,x3,y3,...'")
    return out


def encode_list(values: Iterable[Any]) -> str:
    return ",".join(str(v) for v in values)


def decode_list(text: str | None, allowed: Iterable[str] | None = None) -> list[str]:
    values = [v for v in (text or "").split(",") if v]
    if allowed is not None:
        allowed = set(allowed)
        values = [v for v in values if v in allowed]  # a stale or edited link drops unknown values
    return values


def encode_range(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


def decode_range(text: str | None, default: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in (text or "").split("-", 1))
    except ValueError:
        return default
    return (lo, hi) if lo <= hi else default


def param(name: str, default: str | None = None) -> str | None:
    import streamlit as st
    return st.query_params.get(name, default)


def init_widget(key: str, name: str, default: Any, parse=lambda v: v, choices: Iterable[Any] | None = None) -> None:
    """Seed a widget's session-state value from the URL the first time the page runs in this session."""
    import streamlit as st
    if key in st.session_state:
        return
    raw = st.query_params.get(name)
    value = default
    if raw is not None:
        try:
            value = parse(raw)
        except (TypeError, ValueError):
            value = default
    if choices is not None and value not in list(choices):
        value = default
    st.session_state[key] = value


def sync(**params: Any) -> None:
    """Write the view's state to the URL; None / '' / [] remove a parameter."""
    import streamlit as st
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            value = encode_list(value)
        if value is None or value == "" or value is False:
            if name in st.query_params:
                del st.query_params[name]
        else:
            value = "1" if value is True else str(value)
            if st.query_params.get(name) != value:
                st.query_params[name] = value


def keep_valid(key: str, options=None, bounds: tuple[float, float] | None = None) -> None:
    """Drop list values that are no longer options, clamp a range into bounds.

    Widget state outlives a change of checkpoint or view; a value that the new options do
    not offer would make Streamlit raise instead of showing the page.
    """
    import streamlit as st
    value = st.session_state.get(key)
    if value is None:
        return
    if options is not None and isinstance(value, list):
        allowed = set(options)
        st.session_state[key] = [v for v in value if v in allowed]
    if bounds is not None and isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = bounds
        a, b = (min(max(float(v), lo), hi) for v in value)
        st.session_state[key] = (min(a, b), max(a, b))
