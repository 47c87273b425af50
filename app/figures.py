"""Plotly figures for the pages: plain functions, DataFrame in, go.Figure out (no Streamlit)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from cardio_core.labels import CLASSES, RHYTHM_LABELS
from cardio_core.queries.points import age_bands, colour_values, has_class

# Fixed colours per rhythm label so every view, checkpoint and page agrees.
LABEL_COLOURS = {"AFIB": "#d62728", "GSVT": "#ff7f0e", "PACE": "#9467bd", "SB": "#1f77b4", "SR": "#2ca02c",
                 "mixed": "#8c564b", "other": "#b0b0b0", "unknown": "#b0b0b0",
                 "DCM": "#d62728", "HCM": "#ff7f0e", "MINF": "#9467bd", "NOR": "#2ca02c", "RV": "#1f77b4"}
SYMBOL_SINGLE, SYMBOL_MULTI = "circle", "diamond"


# Age bands in order on a sequential, colour-blind-safe scale (viridis), youngest dark to oldest light.
AGE_BAND_NAMES = ("<30", "30-39", "40-49", "50-59", "60-69", "70-79", "80+")
AGE_BAND_COLOURS = dict(zip(AGE_BAND_NAMES, sample_colorscale("Viridis", [i / 6 for i in range(7)])))


def category_colours(values) -> dict[str, str]:
    """A stable colour per category: fixed for labels and age bands, else the qualitative palette in sorted order."""
    palette = qualitative.Safe + qualitative.Vivid
    out, k = {}, 0
    for v in sorted(set(map(str, values))):
        if v in LABEL_COLOURS:
            out[v] = LABEL_COLOURS[v]
        elif v in AGE_BAND_COLOURS:
            out[v] = AGE_BAND_COLOURS[v]
        else:
            out[v] = palette[k % len(palette)]
            k += 1
    return out


# At most this many points are drawn per scatter panel. Measured with `./run bench app --pages` (50k points beside
# 10): plotly.js in a browser without a GPU redraws every point on each mouse move of a box selection and sends
# every selected point back, so drawing all 50k cost a selection rerun 11 s more than the 10-point page; with
# 5,000 drawn a page load still cost 0.7 s more. Above the budget a fixed sample is drawn and the plot says so;
# selections, summaries and tables cover every record.
DRAW_BUDGET = 2500
# Every stratum (colour) keeps at least this many drawn points, so a rare label never vanishes from the plot.
DRAW_MIN_PER_STRATUM = 100


def drawn_subset(points: pd.DataFrame, budget: int | None = DRAW_BUDGET, strata=None) -> np.ndarray:
    """Which rows a scatter draws (bool per row): all of them up to `budget`; above it, in each stratum (a colour
    category) its share of the budget, at least DRAW_MIN_PER_STRATUM, chosen by a hash of the record's id.

    The hash, not a random draw, makes the choice the same for a record in every checkpoint, frame and page, so
    side-by-side views and an animation show the same records, and a redraw never reshuffles what is shown."""
    n = len(points)
    if budget is None or n <= budget:
        return np.ones(n, dtype=bool)
    if budget <= 0:
        raise ValueError(f"budget must be a positive number of points; got {budget}")
    # pandas' fixed-key hash of (dataset, record): the same value for a record in every process
    rank = pd.util.hash_pandas_object(points[["dataset_id", "record_id"]].astype(str), index=False).to_numpy()
    strata = np.zeros(n, dtype=np.int64) if strata is None else pd.factorize(np.asarray(strata, dtype=object))[0]
    keep = np.zeros(n, dtype=bool)
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        quota = min(len(rows), max(DRAW_MIN_PER_STRATUM, int(round(budget * len(rows) / n))))
        keep[rows[np.argsort(rank[rows], kind="stable")[:quota]]] = True
    return keep


def drawn_rows(points: pd.DataFrame, max_points: int | None, strata, ranges):
    """(drawn_subset's rows, axis ranges): the ranges fit every record when only a sample is drawn."""
    drawn = drawn_subset(points, max_points, strata)
    if ranges is None and not drawn.all():
        ranges = padded_ranges([points])
    return drawn, ranges


def corner_note(fig: go.Figure, text: str, review: bool) -> None:
    """A note in the plot's lower-left corner (so it travels with a downloaded image)."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="bottom",
                       showarrow=False, font=dict(size=REVIEW_FONT if review else 11, color="#555"),
                       bgcolor="rgba(255,255,255,0.7)")


def drawn_note(fig: go.Figure, n_drawn: int, n_total: int, review: bool) -> None:
    """Say on the plot itself that it draws a sample."""
    if n_drawn < n_total:
        corner_note(fig, f"drawn: {n_drawn:,} of {n_total:,} records (a fixed sample per colour); "
                         "selections and summaries count every record", review)


def hover_text(points: pd.DataFrame, review: bool) -> np.ndarray:
    """One hover line per point; review mode shows no record id and an age band instead of the age."""
    age = age_bands(points["age"]) if review else \
        (pd.to_numeric(points["age"], errors="coerce").round().astype("Int64").astype("string") + " y").fillna("")
    sex = points["sex"].fillna("")
    # Short on purpose: at 50k points the hover text is most of the payload.
    head = points["dataset_id"] if review else points["record_id"].astype(str)
    return (head + " · " + points["labels"] + " · " + age.astype(str) + " " + sex).to_numpy()


def scatter_figure(points: pd.DataFrame, colour_by: str = "rhythm", *, cls: str | None = None, review: bool = False,
                   highlight: np.ndarray | None = None, title: str | None = None, ranges=None,
                   colours: dict[str, str] | None = None, height: int = 620,
                   axes: tuple[str, str] = ("UMAP 1", "UMAP 2"), max_points: int | None = DRAW_BUDGET) -> go.Figure:
    """WebGL scatter of projection points; marker shape = single vs multi-labelled; `axes`: the axis titles
    (("LD 1", "LD 2") for the LDA view).

    Every trace carries customdata = the row's position in `points`, so selections map back
    to rows. `highlight` (bool per row) draws rings around selected records (shared selection).
    Above `max_points` records a fixed sample is drawn (drawn_subset; None draws all).
    """
    size = 9 if review else 5
    fig = go.Figure()
    values_all = colour_values(points, colour_by, cls=cls, review=review)
    drawn, ranges = drawn_rows(points, max_points, None if pd.api.types.is_float_dtype(values_all)
                               else values_all.astype(str).to_numpy(), ranges)
    n_total, points, values = len(points), points[drawn], values_all[drawn]
    pos = np.flatnonzero(drawn).astype(np.int32)
    multi = points["multi"].to_numpy(bool)
    text = hover_text(points, review)
    x, y = points["x"].to_numpy(np.float32), points["y"].to_numpy(np.float32)
    # One trace per (colour, shape) with a scalar symbol: per-point symbol arrays cost
    # seconds of plotly validation at 50k points.
    if pd.api.types.is_float_dtype(values):
        c = values.to_numpy(np.float32)
        lo, hi = float(np.nanmin(c)) if np.isfinite(c).any() else 0.0, float(np.nanmax(c)) if np.isfinite(c).any() else 1.0
        for is_multi, symbol in ((False, SYMBOL_SINGLE), (True, SYMBOL_MULTI)):
            m = multi == is_multi
            fig.add_trace(go.Scattergl(
                x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m], hovertemplate="%{text}<extra></extra>",
                marker=dict(color=c[m], colorscale="Viridis", cmin=lo, cmax=hi, size=size, symbol=symbol, opacity=0.8,
                            colorbar=dict(title=colour_by) if not is_multi else None, showscale=not is_multi),
                name=f"{colour_by} ({'multi' if is_multi else 'single'})", showlegend=False))
    else:
        colours = colours or category_colours(values)
        for cat in sorted(values.unique(), key=lambda c: (c in ("other", "unknown"),
                                                          AGE_BAND_NAMES.index(c) if c in AGE_BAND_NAMES else 99, c)):
            in_cat = (values == cat).to_numpy()
            for is_multi, symbol in ((False, SYMBOL_SINGLE), (True, SYMBOL_MULTI)):
                m = in_cat & (multi == is_multi)
                if not m.any():
                    continue
                fig.add_trace(go.Scattergl(
                    x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m], name=str(cat),
                    legendgroup=str(cat), showlegend=not is_multi or not (in_cat & ~multi).any(),
                    hovertemplate="%{text}<extra></extra>",
                    marker=dict(color=colours.get(cat, "#888"), size=size, symbol=symbol, opacity=0.8)))
    if highlight is not None and np.asarray(highlight).any():
        h = np.asarray(highlight, bool)[drawn]
        fig.add_trace(go.Scattergl(x=x[h], y=y[h], mode="markers", name="selected", customdata=pos[h],
                                   hoverinfo="skip", marker=dict(size=size + 6, color="rgba(0,0,0,0)",
                                                                 line=dict(color="black", width=1.5))))
    _layout(fig, title, review, height, ranges)
    drawn_note(fig, len(points), n_total, review)
    fig.update_xaxes(title_text=axes[0])
    fig.update_yaxes(title_text=axes[1])
    return fig


def cross_domain_figure(points: pd.DataFrame, *, review: bool = False, title: str | None = None,
                        ranges=None, height: int = 620, colour_by: str = "rhythm", cls: str | None = None,
                        max_points: int | None = DRAW_BUDGET) -> go.Figure:
    """Chapman density contours per rhythm label, PTB-XL markers on top in the matching colours (thesis Fig. 4.5).

    Coloured by anything else (age, sex, ...), both cohorts are drawn as markers in that colouring:
    Chapman as small dots, PTB-XL as crosses, so the domain stays visible. Contours are computed from every
    record; above `max_points` the markers are a fixed sample (drawn_subset) per cohort and colour."""
    if colour_by != "rhythm":
        return _cross_domain_coloured(points, colour_by, cls, review=review, title=title, ranges=ranges,
                                      height=height, max_points=max_points)
    fig = go.Figure()
    drawn, ranges = drawn_rows(points, max_points,
                               (points["dataset_id"] + ":" + points["rhythm"].astype(str)).to_numpy(), ranges)
    chap = points[points["dataset_id"] == "chapman"]
    pos = np.arange(len(points))
    if len(chap):
        xr, yr = padded_ranges([chap])
        for lab in RHYTHM_LABELS:
            part = chap[chap["rhythm"] == lab]
            if len(part) < 5:
                continue
            gx, gy, z = density_grid(part["x"].to_numpy(float), part["y"].to_numpy(float), xr, yr)
            colour = LABEL_COLOURS[lab]
            fig.add_trace(go.Contour(
                x=gx, y=gy, z=z, name=f"Chapman {lab}", legendgroup=lab, showlegend=True, showscale=False,
                contours=dict(coloring="lines", start=0.2, end=0.8, size=0.2), colorscale=[[0, colour], [1, colour]],
                line=dict(width=1.5), hoverinfo="skip"))
    # Chapman points faint, so the selection tools have something under the cursor.
    m = (points["dataset_id"] == "chapman").to_numpy() & drawn
    text = np.full(len(points), "", dtype=object)
    text[drawn] = hover_text(points[drawn], review)  # hover lines for the drawn points only
    fig.add_trace(go.Scattergl(x=points["x"].to_numpy(np.float32)[m], y=points["y"].to_numpy(np.float32)[m],
                               mode="markers", customdata=pos[m], text=text[m], name="Chapman test",
                               hovertemplate="%{text}<extra></extra>",
                               marker=dict(size=3, color="rgba(120,120,120,0.25)")))
    size = 10 if review else 7
    for lab in list(RHYTHM_LABELS) + ["mixed", "other"]:
        mm = (points["dataset_id"].eq("ptbxl") & points["rhythm"].eq(lab)).to_numpy() & drawn
        if not mm.any():
            continue
        fig.add_trace(go.Scattergl(
            x=points["x"].to_numpy(np.float32)[mm], y=points["y"].to_numpy(np.float32)[mm], mode="markers",
            customdata=pos[mm], text=text[mm], name=f"PTB-XL {lab}", legendgroup=lab,
            hovertemplate="%{text}<extra></extra>",
            marker=dict(size=size, color=LABEL_COLOURS.get(lab, "#888"), symbol="x", line=dict(width=0))))
    _layout(fig, title, review, height, ranges)
    drawn_note(fig, int(drawn.sum()), len(points), review)
    return fig


# Review mode is for a projector: every text of a chart at least this size (px).
REVIEW_FONT, NORMAL_FONT = 18, 13


def chart_fonts(fig, review: bool) -> None:
    """Legend, axis titles, ticks and hover text at one legible size; the legend sits below the toolbar."""
    size = REVIEW_FONT if review else NORMAL_FONT
    fig.update_layout(font=dict(size=size), legend=dict(font=dict(size=size), itemsizing="constant", y=1,
                                                        yanchor="top"),
                      hoverlabel=dict(font=dict(size=size)))
    fig.update_xaxes(title_font=dict(size=size), tickfont=dict(size=size))
    fig.update_yaxes(title_font=dict(size=size), tickfont=dict(size=size))
    # the modebar (toolbar) sits in the top margin, above the legend, never on it
    top = fig.layout.margin.t if fig.layout.margin and fig.layout.margin.t is not None else 0
    fig.update_layout(margin=dict(t=max(top, 40)))


def _cross_domain_coloured(points, colour_by, cls, *, review, title, ranges, height, max_points) -> go.Figure:
    fig = go.Figure()
    values = colour_values(points, colour_by, cls=cls, review=review)
    strata = points["dataset_id"].to_numpy(str).astype(object)
    if not pd.api.types.is_float_dtype(values):
        strata = strata + ":" + values.astype(str).to_numpy()
    drawn, ranges = drawn_rows(points, max_points, strata, ranges)
    n_total, points, values = len(points), points[drawn], values[drawn]
    pos = np.flatnonzero(drawn).astype(np.int32)
    text = hover_text(points, review)
    x, y = points["x"].to_numpy(np.float32), points["y"].to_numpy(np.float32)
    is_ptb = points["dataset_id"].eq("ptbxl").to_numpy()
    base = 10 if review else 7
    if pd.api.types.is_float_dtype(values):
        c = values.to_numpy(np.float32)
        finite = np.isfinite(c)
        lo, hi = (float(np.nanmin(c)), float(np.nanmax(c))) if finite.any() else (0.0, 1.0)
        for name, m, size, symbol in (("Chapman test", ~is_ptb, base - 3, "circle"), ("PTB-XL", is_ptb, base, "x")):
            fig.add_trace(go.Scattergl(x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m], name=name,
                                       hovertemplate="%{text}<extra></extra>",
                                       marker=dict(color=c[m], colorscale="Viridis", cmin=lo, cmax=hi, size=size,
                                                   symbol=symbol, opacity=0.85, showscale=name == "PTB-XL",
                                                   colorbar=dict(title=colour_by) if name == "PTB-XL" else None)))
    else:
        colours = category_colours(values)
        order = sorted(values.unique(), key=lambda v: (v in ("other", "unknown"),
                                                         AGE_BAND_NAMES.index(v) if v in AGE_BAND_NAMES else 99, v))
        for cat in order:
            for name, part, size, symbol in (("Chapman", ~is_ptb, base - 3, "circle"), ("PTB-XL", is_ptb, base, "x")):
                m = part & (values == cat).to_numpy()
                if not m.any():
                    continue
                fig.add_trace(go.Scattergl(x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m],
                                           name=f"{name} {cat}", legendgroup=str(cat),
                                           hovertemplate="%{text}<extra></extra>",
                                           marker=dict(color=colours.get(cat, "#888"), size=size, symbol=symbol,
                                                       opacity=0.85)))
    _layout(fig, title, review, height, ranges)
    drawn_note(fig, len(points), n_total, review)
    return fig


def _layout(fig, title, review, height, ranges):
    fig.update_layout(title=title, height=height, dragmode="lasso",
                      margin=dict(l=10, r=10, t=40, b=10), uirevision="keep")
    fig.update_xaxes(title="UMAP 1", showticklabels=False, zeroline=False)
    fig.update_yaxes(title="UMAP 2", showticklabels=False, zeroline=False)
    chart_fonts(fig, review)
    if ranges is not None:
        fig.update_xaxes(range=list(ranges[0]))
        fig.update_yaxes(range=list(ranges[1]))


def padded_ranges(frames) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges covering every frame (so an epoch slider does not rescale)."""
    xs = np.concatenate([f["x"].to_numpy(float) for f in frames if len(f)] or [np.zeros(1)])
    ys = np.concatenate([f["y"].to_numpy(float) for f in frames if len(f)] or [np.zeros(1)])
    px, py = 0.05 * (np.ptp(xs) or 1), 0.05 * (np.ptp(ys) or 1)
    return (xs.min() - px, xs.max() + px), (ys.min() - py, ys.max() + py)


def density_grid(x: np.ndarray, y: np.ndarray, x_range, y_range, bins: int = 80, sigma: float = 2.5):
    """A smoothed 2-D histogram scaled to max 1: cheap density contours even at 50k points (no KDE)."""
    from scipy.ndimage import gaussian_filter
    hist, xe, ye = np.histogram2d(x, y, bins=bins, range=[list(x_range), list(y_range)])
    z = gaussian_filter(hist.T, sigma)  # rows = y for plotly
    z = z / z.max() if z.max() > 0 else z
    return (xe[1:] + xe[:-1]) / 2, (ye[1:] + ye[:-1]) / 2, z


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d
    if len(values) == 0:
        return np.zeros(len(grid) - 1)
    hist, _ = np.histogram(values, bins=grid, density=True)
    return gaussian_filter1d(hist, 2.0)


MIN_FACET_FOR_DENSITY = 5
# Points per small panel of a facet figure (grey context and highlighted records each): a row has a panel per
# rhythm label and a page a row per chosen label, all drawn at once.
FACET_DRAW_BUDGET = 1500


def facet_figure(points: pd.DataFrame, label: str, partners=RHYTHM_LABELS, *, review: bool = False,
                 height: int = 380, max_points: int | None = FACET_DRAW_BUDGET) -> go.Figure:
    """One panel per partner label: records with `label` AND the partner highlighted over all others in grey,
    with marginal density curves of the highlighted records (top: x, right: y). Thesis Figs D.4 / D.5.

    The counts and density curves use every record; above `max_points` a panel draws a fixed sample
    (drawn_subset) of its grey records and of its highlighted ones."""
    if label not in CLASSES:
        raise ValueError(f"label must be one of the 20 classes; got {label!r}")
    partners = list(partners)
    n = len(partners)
    x, y = points["x"].to_numpy(np.float32), points["y"].to_numpy(np.float32)
    has_label = has_class(points, label)
    counts = [int((has_label & has_class(points, p)).sum()) for p in partners]
    titles = [f"{label} + {p} (n = {c})" if c >= MIN_FACET_FOR_DENSITY else f"{label} + {p}: n = {c}, too few"
              for p, c in zip(partners, counts)]
    fig = make_subplots(rows=2, cols=2 * n, row_heights=[0.22, 0.78],
                        column_widths=[0.8 / n, 0.2 / n] * n, horizontal_spacing=0.01, vertical_spacing=0.02,
                        subplot_titles=sum(([t, ""] for t in titles), []))
    grid_x = np.linspace(x.min(), x.max(), 61) if len(x) else np.linspace(0, 1, 61)
    grid_y = np.linspace(y.min(), y.max(), 61) if len(y) else np.linspace(0, 1, 61)
    any_drawn = np.zeros(len(points), dtype=bool)
    shown = []
    for partner in partners:
        hi = has_label & has_class(points, partner)
        grey, lit = (np.zeros(len(points), dtype=bool) for _ in range(2))
        grey[~hi] = drawn_subset(points[~hi], max_points)
        lit[hi] = drawn_subset(points[hi], max_points)
        shown.append((hi, grey, lit))
        any_drawn |= lit
    text = np.full(len(points), "", dtype=object)
    text[any_drawn] = hover_text(points[any_drawn], review)  # hover lines for the drawn highlighted points only
    sampled = False
    for i, (partner, (hi, grey, lit)) in enumerate(zip(partners, shown)):
        col = 2 * i + 1
        sampled |= bool(grey.sum() < (~hi).sum() or lit.sum() < hi.sum())
        fig.add_trace(go.Scattergl(x=x[grey], y=y[grey], mode="markers", hoverinfo="skip", showlegend=False,
                                   marker=dict(size=3, color="rgba(150,150,150,0.3)")), row=2, col=col)
        colour = LABEL_COLOURS.get(partner, "#d62728")
        fig.add_trace(go.Scattergl(x=x[lit], y=y[lit], mode="markers", text=text[lit], showlegend=False,
                                   hovertemplate="%{text}<extra></extra>", name=f"{label}+{partner}",
                                   marker=dict(size=7 if review else 5, color=colour)), row=2, col=col)
        if hi.sum() < MIN_FACET_FOR_DENSITY:
            continue   # a density of a handful of records is a shape drawn from noise: none is drawn
        cx, cy = (grid_x[1:] + grid_x[:-1]) / 2, (grid_y[1:] + grid_y[:-1]) / 2
        fig.add_trace(go.Scatter(x=cx, y=_density(x[hi], grid_x), mode="lines", line=dict(color=colour),
                                 hoverinfo="skip", showlegend=False), row=1, col=col)
        fig.add_trace(go.Scatter(x=cx, y=_density(x, grid_x), mode="lines", line=dict(color="#999", dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=1, col=col)
        fig.add_trace(go.Scatter(y=cy, x=_density(y[hi], grid_y), mode="lines", line=dict(color=colour),
                                 hoverinfo="skip", showlegend=False), row=2, col=col + 1)
        fig.add_trace(go.Scatter(y=cy, x=_density(y, grid_y), mode="lines", line=dict(color="#999", dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=2, col=col + 1)
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=40, b=5))
    chart_fonts(fig, review)
    if sampled:
        corner_note(fig, f"each panel draws at most {max_points:,} grey and {max_points:,} highlighted records "
                         "(a fixed sample); counts and density curves use every record", review)
    return fig


def silhouette_bars(table: pd.DataFrame, name_a: str, name_b: str, review: bool = False) -> go.Figure:
    """Grouped bars of silhouette_comparison() with bootstrap CIs as error bars."""
    fig = go.Figure()
    for prefix, name, colour in (("baseline", name_a, "#9e9e9e"), ("other", name_b, "#c0392b")):
        v = table[f"{prefix}_value"]
        fig.add_trace(go.Bar(x=table["label"], y=v, name=name, marker_color=colour,
                             error_y=dict(type="data", symmetric=False, array=table[f"{prefix}_ci_high"] - v,
                                          arrayminus=v - table[f"{prefix}_ci_low"])))
    fig.update_layout(barmode="group", yaxis_title="silhouette", height=380, margin=dict(l=10, r=10, t=40, b=10))
    chart_fonts(fig, review)
    return fig


LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left")


def label_positions(x, y) -> list[str]:
    """Text positions for point labels so that neighbours' labels do not pile up: points closer than ~8% of the
    axes to an already placed point take the next position in LABEL_POSITIONS."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sx, sy = (np.ptp(x) or 1.0), (np.ptp(y) or 1.0)
    out: list[str] = [""] * len(x)
    placed: list[tuple[float, float, int]] = []
    for i in np.lexsort((y, x)):
        close = {k for px, py, k in placed if abs(x[i] - px) / sx < 0.08 and abs(y[i] - py) / sy < 0.08}
        k = next(k for k in range(len(LABEL_POSITIONS)) if k not in close) if len(close) < len(LABEL_POSITIONS) \
            else len(placed) % len(LABEL_POSITIONS)
        out[i] = LABEL_POSITIONS[k]
        placed.append((x[i], y[i], k))
    return out


def prevalence_f1_figure(table: pd.DataFrame, fit: dict, review: bool = False) -> go.Figure:
    rows = table[table["label"] != "macro"].dropna(subset=["prevalence", "f1"])
    fig = go.Figure(go.Scatter(x=rows["prevalence"], y=rows["f1"], mode="markers+text", text=rows["label"],
                               textposition=label_positions(rows["prevalence"], rows["f1"]),
                               marker=dict(size=10, color="#1f77b4"), name="class"))
    if np.isfinite(fit.get("slope", np.nan)):
        xs = np.linspace(0, float(rows["prevalence"].max()), 50)
        fig.add_trace(go.Scatter(x=xs, y=fit["intercept"] + fit["slope"] * xs, mode="lines", name="least squares",
                                 line=dict(color="#c0392b")))
    fig.update_layout(xaxis_title="prevalence (test split)", yaxis_title="F1", height=420,
                      title=pearson_title(fit, rows["f1"]), margin=dict(l=10, r=10, t=50, b=10))
    chart_fonts(fig, review)
    return fig


def pearson_title(fit: dict, f1) -> str:
    r, n = fit.get("r", float("nan")), fit.get("n", 0)
    if np.isfinite(r):
        return f"Pearson r = {r:.2f} (n = {n})"
    why = "F1 is the same for every class" if pd.Series(f1).nunique() <= 1 else "too few classes or constant values"
    return f"Pearson r undefined: {why} (n = {n})"


def fold_accuracy_figure(per_fold: pd.DataFrame, mean: float, se: float, review: bool = False,
                         chance: float | None = None) -> go.Figure:
    fig = go.Figure(go.Bar(x=[f"fold {int(f)}" for f in per_fold["fold"]], y=per_fold["accuracy"],
                           marker_color="#1f77b4", name="accuracy"))
    fig.add_hline(y=mean, line_dash="dash", annotation_text=f"mean {mean:.3f} ± {se:.3f} SE")
    if chance is not None:
        fig.add_hline(y=chance, line_dash="dot", line_color="#c0392b", annotation_position="bottom right",
                      annotation_text=f"chance {chance:.2f}")
    fig.update_layout(yaxis_title="accuracy", yaxis_range=[0, 1], height=360, margin=dict(l=10, r=10, t=40, b=10))
    chart_fonts(fig, review)
    return fig


def probe_figure(trend: pd.DataFrame, review: bool = False) -> go.Figure:
    fig = go.Figure()
    for name, part in trend.groupby("name"):
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["value"], mode="lines+markers", name=name))
    fig.update_layout(xaxis_title="epoch (0 = baseline)", yaxis_title="value", height=360,
                      margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(tickformat="d", dtick=max(1, int(np.ceil(trend["epoch"].max() / 10))) if len(trend) else 1)
    chart_fonts(fig, review)
    return fig


def standardise_layout(points: pd.DataFrame) -> pd.DataFrame:
    """Centre a layout and scale it to unit RMS radius: UMAP coordinates carry no absolute scale, and without
    this one frame's wider spread squeezes every other frame into a corner of shared axes."""
    out = points.copy()
    xy = out[["x", "y"]].to_numpy(float)
    xy = xy - xy.mean(0) if len(xy) else xy
    rms = float(np.sqrt((xy ** 2).sum(1).mean())) if len(xy) else 1.0
    xy = xy / (rms or 1.0)
    out["x"], out["y"] = xy[:, 0], xy[:, 1]
    return out


# Points per animation frame: every frame travels to the browser at once.
EVOLUTION_DRAW_BUDGET = 1500


def evolution_figure(frames: list[tuple[int, pd.DataFrame]], *, colours: dict[str, str], review: bool = False,
                     title: str = "", height: int = 560, max_points: int | None = EVOLUTION_DRAW_BUDGET) -> go.Figure:
    """A run's checkpoints as an animation (play, pause, an epoch slider) over one set of axes.

    Every frame is standardised (standardise_layout), the axes fit all frames and keep a 1:1
    aspect, so no frame is squeezed and distances read the same in every frame. Above `max_points` records a
    frame draws a fixed sample (drawn_subset): the same records in every frame, since the choice hashes ids.
    """
    if not frames:
        raise ValueError("evolution_figure needs at least one (epoch, points) frame")
    frames = [(int(e), standardise_layout(p)) for e, p in frames]  # standardised on every record
    n_total = max(len(p) for _, p in frames)
    # the axes fit every record of every frame, drawn or not
    lim = max(float(np.abs(p[["x", "y"]].to_numpy(float)).max()) if len(p) else 1.0 for _, p in frames) * 1.05
    frames = [(e, p[drawn_subset(p, max_points, p["rhythm"].astype(str).to_numpy())]) for e, p in frames]
    cats = sorted(set().union(*[set(p["rhythm"].astype(str)) for _, p in frames]),
                  key=lambda c: (c in ("other", "unknown", "mixed"), c))
    size = 9 if review else 5

    def traces(points: pd.DataFrame) -> list:
        text = hover_text(points, review)
        out = []
        for cat in cats:
            m = (points["rhythm"].astype(str) == cat).to_numpy()
            out.append(go.Scattergl(x=points["x"].to_numpy(np.float32)[m], y=points["y"].to_numpy(np.float32)[m],
                                    mode="markers", name=cat, text=text[m], hovertemplate="%{text}<extra></extra>",
                                    marker=dict(color=colours.get(cat, "#888"), size=size, opacity=0.8)))
        return out

    names = [f"epoch {e}" if e else "baseline" for e, _ in frames]
    fig = go.Figure(data=traces(frames[-1][1]),
                    frames=[go.Frame(data=traces(p), name=n) for (_, p), n in zip(frames, names)])
    anim = dict(frame=dict(duration=900, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.04, xanchor="left", yanchor="top",
                          showactive=False, pad=dict(t=0, r=10),
                          buttons=[dict(label="▶ Play", method="animate", args=[None, {**anim, "fromcurrent": True}]),
                                   dict(label="❚❚ Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=len(frames) - 1, x=0.2, len=0.8, y=-0.02, yanchor="top", pad=dict(t=0),
                      currentvalue=dict(prefix="shown: ", font=dict(size=18 if review else 13)),
                      steps=[dict(label=n, method="animate", args=[[n], {**anim, "frame": dict(duration=0, redraw=True)}])
                             for n in names])])
    _layout(fig, title, review, height, ((-lim, lim), (-lim, lim)))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_layout(margin=dict(l=10, r=10, t=40 if title else 10, b=90))
    drawn_note(fig, max(len(p) for _, p in frames), n_total, review)
    return fig


MODALITY_SYMBOLS = {"ECG": "circle", "CMR": "square"}


def paired_figure(points: pd.DataFrame, colour_by: str = "modality", *, review: bool = False,
                  highlight: set[str] | None = None, height: int = 620) -> go.Figure:
    """The joint shared-space layout of an encoder pair: ECG points as circles, CMR points as squares, coloured by
    modality or by a subject value (a phenotype, age, BMI). Subjects in `highlight` get their two points ringed and
    joined by a line, so a selected ECG shows where its own CMR landed. customdata = row position in `points`."""
    size = 10 if review else 6
    fig = go.Figure()
    pos = np.arange(len(points), dtype=np.int32)
    x, y = points["x"].to_numpy(np.float32), points["y"].to_numpy(np.float32)
    head = points["modality"] if review else points["modality"] + " " + points["record_id"].astype(str)
    age = age_bands(points["age"]) if review else \
        (pd.to_numeric(points["age"], errors="coerce").round().astype("Int64").astype("string") + " y").fillna("")
    text = (head + " · " + age.astype(str) + " " + points["sex"].fillna("")).to_numpy()
    if colour_by == "modality":
        colours = {"ECG": "#1f77b4", "CMR": "#d62728"}
        for modality, symbol in MODALITY_SYMBOLS.items():
            m = (points["modality"] == modality).to_numpy()
            fig.add_trace(go.Scattergl(x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m], name=modality,
                                       hovertemplate="%{text}<extra></extra>",
                                       marker=dict(color=colours[modality], size=size, symbol=symbol, opacity=0.75)))
    else:
        c = pd.to_numeric(points[colour_by], errors="coerce").to_numpy(np.float32) if colour_by != "sex" else \
            points["sex"].map({"F": 0.0, "M": 1.0}).to_numpy(np.float32)
        finite = np.isfinite(c)
        lo, hi = (float(np.nanmin(c)), float(np.nanmax(c))) if finite.any() else (0.0, 1.0)
        for modality, symbol in MODALITY_SYMBOLS.items():
            m = (points["modality"] == modality).to_numpy()
            fig.add_trace(go.Scattergl(
                x=x[m], y=y[m], mode="markers", customdata=pos[m], text=text[m], name=modality,
                hovertemplate="%{text}<extra></extra>",
                marker=dict(color=c[m], colorscale="Viridis", cmin=lo, cmax=hi, size=size, symbol=symbol, opacity=0.8,
                            showscale=modality == "ECG",
                            colorbar=dict(title="sex (0 F, 1 M)" if colour_by == "sex" else colour_by)
                            if modality == "ECG" else None)))
    if highlight:
        h = points["record_id"].astype(str).isin(highlight).to_numpy()
        if h.any():
            sel = points[h].sort_values(["record_id", "modality"])
            lx, ly = [], []
            for _, grp in sel.groupby("record_id"):
                if len(grp) == 2:
                    lx += grp["x"].tolist() + [None]
                    ly += grp["y"].tolist() + [None]
            if lx:
                fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="pair", hoverinfo="skip",
                                         line=dict(color="black", width=1.5 if not review else 2.5)))
            fig.add_trace(go.Scattergl(x=x[h], y=y[h], mode="markers", name="selected", customdata=pos[h],
                                       hoverinfo="skip", marker=dict(size=size + 8, color="rgba(0,0,0,0)",
                                                                     line=dict(color="black", width=2))))
    _layout(fig, None, review, height, None)
    return fig


def phenotype_scatter_figure(scatter: dict, phenotype: str, *, title: str, review: bool = False,
                             height: int = 420) -> go.Figure:
    """Predicted against observed for one phenotype on the test subjects, the identity line dotted and the
    least-squares line solid, with the stored Pearson r (and its interval) in the title. Hover shows the two
    values only, never a subject id, so the same figure serves review mode."""
    pts, line = scatter["points"], scatter["line"]
    fig = go.Figure(go.Scatter(x=pts["observed"], y=pts["predicted"], mode="markers", name="test subject",
                               hovertemplate="observed %{x:.3g}<br>predicted %{y:.3g}<extra></extra>",
                               marker=dict(size=10 if review else 7, color="#1f77b4", opacity=0.75)))
    finite = pd.concat([pts["observed"], pts["predicted"]]).dropna()
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="identity", hoverinfo="skip",
                                 line=dict(color="#7f7f7f", dash="dot")))
        if np.isfinite(line["slope"]):
            xs = np.array([float(pts["observed"].min()), float(pts["observed"].max())])
            fig.add_trace(go.Scatter(x=xs, y=line["intercept"] + line["slope"] * xs, mode="lines",
                                     name="least squares", hoverinfo="skip", line=dict(color="#c0392b")))
    r = scatter["r"]
    stat = (f"r = {r:.2f}" + (f" (95% CI {scatter['ci_low']:.2f} – {scatter['ci_high']:.2f})"
                              if scatter["ci_low"] is not None and np.isfinite(scatter["ci_low"]) else "")
            if r is not None and np.isfinite(r) else "r undefined (constant values)")
    fig.update_layout(title=f"{title}<br><sup>{phenotype}: {stat}, n = {line['n']}</sup>",
                      xaxis_title=f"{phenotype} observed (CMR)", yaxis_title=f"{phenotype} predicted",
                      height=height, margin=dict(l=10, r=10, t=70, b=10))
    chart_fonts(fig, review)
    return fig


def label_efficiency_figure(curve: pd.DataFrame, results: pd.DataFrame, *, metric: str, review: bool = False,
                            height: int = 380) -> go.Figure:
    """A sweep's label-efficiency curve: the mean over seeds per training fraction (log axis, in %) with its
    95 % interval as error bars, and each seed's own score as a faint dot behind it."""
    fig = go.Figure()
    scored = results[results["value"].notna()]
    if len(scored):
        fig.add_trace(go.Scatter(x=100 * scored["fraction"], y=scored["value"], mode="markers", name="one seed",
                                 customdata=scored["seed"],
                                 hovertemplate="seed %{customdata} · %{x:.3g} %: %{y:.3f}<extra></extra>",
                                 marker=dict(size=9 if review else 7, color="#9aa9b8", opacity=0.8)))
    if len(curve):
        upper = (curve["ci_high"] - curve["mean"]).fillna(0)
        lower = (curve["mean"] - curve["ci_low"]).fillna(0)
        fig.add_trace(go.Scatter(
            x=100 * curve["fraction"], y=curve["mean"], mode="lines+markers", name="mean over seeds (95 % CI)",
            customdata=np.stack([curve["n"], curve["ci_low"], curve["ci_high"]], axis=1),
            hovertemplate="%{x:.3g} % of the training set<br>mean %{y:.3f} over %{customdata[0]} seeds"
                          "<br>95 % CI %{customdata[1]:.3f} – %{customdata[2]:.3f}<extra></extra>",
            error_y=dict(type="data", array=upper, arrayminus=lower, visible=True, thickness=1.5),
            line=dict(color="#1f4e79", width=2.5), marker=dict(size=10 if review else 8)))
    ticks = sorted(set(curve["fraction"]).union(results["fraction"]))
    fig.update_xaxes(type="log", title="training fraction (% of the training set, log scale)",
                     tickvals=[100 * f for f in ticks], ticktext=[f"{100 * f:g} %" for f in ticks])
    fig.update_layout(yaxis_title=metric, height=height, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=1.08))
    chart_fonts(fig, review)
    return fig
