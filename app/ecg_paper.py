"""Plotly figures of a 12-lead ECG on ECG paper and of CMR ED / mid / ES frames.

The ECG figure uses paper units: one axis unit = 1 mm, at 25 mm/s and 10 mm/mV (raw signals; 5 mm per SD
for the z-scored preprocessed ones), with 1 mm minor and 5 mm major grid lines and equal axis scaling,
drawn at 5.2 px per mm, so it reads like a printed ECG. Layout: the standard 3 x 4 grid (I, II, III | aVR, aVL, aVF | V1-V3 | V4-V6), each
column showing its own 2.5 s of the 10 s recording, plus a 10 s lead II rhythm strip.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from cardio_core.labels import LEADS

MM_PER_S = 25.0
MM_PER_MV = 10.0
ROW_HEIGHT_MM = 40.0
GRID_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
PAPER_PINK = "#fbe3e6"
MAJOR_RED = "rgba(220, 60, 80, 0.55)"
MINOR_RED = "rgba(230, 120, 130, 0.25)"


def _validate_signal(signal: np.ndarray, fs: float, leads) -> np.ndarray:
    signal = np.asarray(signal, dtype=float)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise ValueError(f"signal must be (n_leads={len(leads)}, n_samples); got shape {signal.shape}")
    if not fs or fs <= 0:
        raise ValueError(f"fs must be a positive sampling rate in Hz; got {fs}")
    if signal.shape[1] < 4 * fs * 0.1:
        raise ValueError(f"signal too short to draw: {signal.shape[1]} samples at {fs} Hz")
    return signal


# Preprocessed signals are z-scores per lead (method.md §2), not millivolts: drawn at 5 mm per SD with a
# calibration bar in another colour and shape, so it cannot be read as the 1 mV pulse.
MM_PER_SD = 5.0
# Drawn at the page's full width, with a height of 6.5 px per mm: the 1:1 paper then fills the width, and on a
# projector-sized page (1920 px) that is 5.8 px per mm, so 1 mm squares stay visible.
PX_PER_MM = 6.5
CALIBRATION_SD = "#1f5fbf"


def ecg_paper_figure(signal: np.ndarray, fs: float = 500.0, *, leads=LEADS, title: str | None = None,
                     rhythm_lead: str = "II", units: str = "mV", line_width: float = 1.0,
                     review: bool = False) -> go.Figure:
    """A 12-lead ECG (n_leads, n_samples) on ECG paper: 3x4 layout plus a rhythm strip.

    units='mV' (a raw recording): 10 mm/mV with the 1 mV calibration pulse. units='SD' (the
    preprocessed, z-scored signal): 5 mm per SD with a 1 SD calibration bar, labelled z-scores.
    Each row's trace is clipped to its own band (a clipped sample is drawn at the band's edge),
    so waveforms never cross into the next row or over the lead labels. NaNs are drawn as gaps.
    """
    if units not in ("mV", "SD"):
        raise ValueError(f"units must be 'mV' (raw) or 'SD' (preprocessed z-scores); got {units!r}")
    leads = tuple(leads)
    signal = _validate_signal(signal, fs, leads)
    index = {name.lower(): i for i, name in enumerate(leads)}
    if rhythm_lead.lower() not in index:
        raise ValueError(f"rhythm_lead {rhythm_lead!r} not among the leads {leads}")
    gain = MM_PER_MV if units == "mV" else MM_PER_SD
    n = signal.shape[1]
    duration = n / fs
    col_seconds = duration / 4
    width_mm = duration * MM_PER_S
    calib_mm = 10.0  # room for the calibration mark on the left
    rows = len(GRID_3X4) + 1
    height_mm = rows * ROW_HEIGHT_MM
    half_band = ROW_HEIGHT_MM / 2 - 1.0
    label_size, footer_size = (20, 18) if review else (16, 16)

    xs, ys, annotations = [], [], []

    def add_trace(x_mm, y_mm, baseline=None):
        if baseline is not None:   # keep the trace inside its row
            y_mm = np.clip(y_mm, baseline - half_band, baseline + half_band)
        xs.append(np.append(x_mm, np.nan))
        ys.append(np.append(y_mm, np.nan))

    def label(x, baseline, text):
        annotations.append(dict(x=x, y=baseline + half_band, text=f"<b>{text}</b>", showarrow=False, xanchor="left",
                                yanchor="top", bgcolor="rgba(255,255,255,0.85)", borderpad=1,
                                font=dict(size=label_size, color="black")))

    for r, row in enumerate(GRID_3X4):
        baseline = height_mm - (r + 0.5) * ROW_HEIGHT_MM
        for c, lead in enumerate(row):
            if lead.lower() not in index:
                continue
            start, stop = int(round(c * col_seconds * fs)), int(round((c + 1) * col_seconds * fs))
            seg = signal[index[lead.lower()], start:stop]
            t = np.arange(start, start + len(seg)) / fs
            add_trace(calib_mm + t * MM_PER_S, baseline + seg * gain, baseline)
            label(calib_mm + c * col_seconds * MM_PER_S + 1, baseline, lead)
            if c:  # the short lead-change tick between columns
                x_tick = calib_mm + c * col_seconds * MM_PER_S
                add_trace(np.array([x_tick, x_tick]), np.array([baseline - 3, baseline + 3]))
    strip_base = 0.5 * ROW_HEIGHT_MM
    add_trace(calib_mm + np.arange(n) / fs * MM_PER_S, strip_base + signal[index[rhythm_lead.lower()]] * gain,
              strip_base)
    label(calib_mm + 1, strip_base, f"{rhythm_lead} (rhythm)")

    traces = [go.Scatter(x=np.concatenate(xs), y=np.concatenate(ys), mode="lines", hoverinfo="skip",
                         line=dict(color="black", width=line_width), showlegend=False, name="ECG")]
    cal_x, cal_y = [], []
    for r in range(rows):  # the calibration mark at the start of every row
        base = height_mm - (r + 0.5) * ROW_HEIGHT_MM
        if units == "mV":   # the standard 1 mV square pulse, 10 mm high
            cal_x += [1, 3, 3, 8, 8, 10, np.nan]
            cal_y += list(base + np.array([0, 0, MM_PER_MV, MM_PER_MV, 0, 0])) + [np.nan]
        else:               # a 1 SD bar with end ticks: no square pulse, so it is never read as 1 mV
            cal_x += [3, 7, np.nan, 5, 5, np.nan, 3, 7, np.nan]
            cal_y += [base, base, np.nan, base, base + MM_PER_SD, np.nan, base + MM_PER_SD, base + MM_PER_SD, np.nan]
    traces.append(go.Scatter(x=cal_x, y=cal_y, mode="lines", hoverinfo="skip", showlegend=False,
                             name="1 mV" if units == "mV" else "1 SD",
                             line=dict(color="black" if units == "mV" else CALIBRATION_SD, width=line_width + 1)))
    fig = go.Figure(traces)
    x_max = calib_mm + width_mm
    axis = dict(showticklabels=False, zeroline=False, ticks="", showline=False, dtick=5, gridcolor=MAJOR_RED,
                gridwidth=1, minor=dict(dtick=1, gridcolor=MINOR_RED, showgrid=True), fixedrange=False)
    fig.update_xaxes(range=[0, x_max], constrain="domain", **axis)
    fig.update_yaxes(range=[0, height_mm], scaleanchor="x", scaleratio=1, constrain="domain", **axis)
    margin = dict(l=10, r=10, t=40 if title else 10, b=50)
    fig.update_layout(
        annotations=annotations, plot_bgcolor=PAPER_PINK, paper_bgcolor="white", margin=margin,
        height=int(PX_PER_MM * height_mm) + margin["t"] + margin["b"],
        title=dict(text=title) if title else None,
    )
    scale = "10 mm/mV" if units == "mV" else f"{MM_PER_SD:g} mm/SD · preprocessed z-scores, not mV · bar = 1 SD"
    fig.add_annotation(x=0, y=-0.01, xref="paper", yref="paper", showarrow=False, xanchor="left", yanchor="top",
                       text=f"25 mm/s · {scale} · {fs:g} Hz · {duration:.1f} s", font=dict(size=footer_size))
    return fig


# transparent at 0 (the anatomy shows through), through yellow, to red at the map's maximum
OVERLAY_COLOURS = [[0, "rgba(255,255,0,0)"], [0.35, "rgba(255,220,0,0.35)"], [0.7, "rgba(255,120,0,0.65)"],
                   [1, "rgba(220,0,0,0.9)"]]


def cmr_frames_figure(frames: np.ndarray, *, titles=("ED", "mid", "ES"), title: str | None = None,
                      overlay: np.ndarray | None = None, overlay_label: str = "Grad-CAM") -> go.Figure:
    """The ED, mid-cycle and ES frames (3, H, W) side by side in grey scale; `overlay` (H, W) in [0, 1], e.g. an
    upsampled Grad-CAM map, is drawn over every frame, translucent, with its colour bar."""
    frames = np.asarray(frames, dtype=float)
    if frames.ndim != 3 or frames.shape[0] != len(titles):
        raise ValueError(f"frames must be ({len(titles)}, height, width); got shape {frames.shape}")
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles), horizontal_spacing=0.02)
    lo, hi = np.nanpercentile(frames, [1, 99]) if np.isfinite(frames).any() else (0.0, 1.0)
    for i, frame in enumerate(frames):
        fig.add_trace(go.Heatmap(z=frame[::-1], colorscale="gray", zmin=lo, zmax=hi if hi > lo else lo + 1,
                                 showscale=False, hoverinfo="skip"), row=1, col=i + 1)
        if overlay is not None:
            if np.shape(overlay) != frame.shape:
                raise ValueError(f"overlay must have the frames' shape {frame.shape}; got {np.shape(overlay)}")
            # transparent where the map is 0, so the anatomy shows through where the model does not look
            fig.add_trace(go.Heatmap(z=np.asarray(overlay, dtype=float)[::-1], zmin=0.0, zmax=1.0, opacity=0.8,
                                     name=overlay_label, colorscale=OVERLAY_COLOURS,
                                     showscale=i == len(frames) - 1, hovertemplate=overlay_label + " %{z:.2f}"
                                     "<extra></extra>", colorbar=dict(title=overlay_label, thickness=10)),
                          row=1, col=i + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", constrain="domain")
    for i in range(2, len(titles) + 1):
        fig.update_yaxes(scaleanchor=f"x{i}", row=1, col=i)
    fig.update_layout(margin=dict(l=5, r=5, t=50 if title else 30, b=5), height=320,
                      title=dict(text=title) if title else None)
    return fig


# The attention view: the model's own input (preprocessed, samples 0..L-1), one row per lead, with the map of
# that lead's time patches as a heat band under its trace.
ATTENTION_ROW = 10.0         # plot units per lead row: the trace gets +-3.5 SD, the band 2 units below it
ATTENTION_CLIP_SD = 3.5
ATTENTION_COLOURS = "YlOrRd"   # white where a patch gets little, dark red where it gets most


def ecg_attention_figure(signal: np.ndarray, attention: np.ndarray, fs: float = 500.0, *, leads=LEADS,
                         title: str | None = None, colour_label: str = "attention") -> go.Figure:
    """The model's input (n_leads, L) with a (n_leads, n_time) map as a heat band under each lead's trace.

    Patch p of a lead covers samples [p * L / n_time, (p + 1) * L / n_time); the band's cells are drawn over
    exactly those seconds, so a hot cell sits under the beat the model attended to. One colour scale for all
    leads (the map's minimum to its maximum), so leads compare.
    """
    leads = tuple(leads)
    signal = np.asarray(signal, dtype=float)
    attention = np.asarray(attention, dtype=float)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise ValueError(f"signal must be (n_leads={len(leads)}, n_samples); got shape {signal.shape}")
    if attention.ndim != 2 or attention.shape[0] != len(leads):
        raise ValueError(f"attention must be (n_leads={len(leads)}, n_time_patches); got shape {attention.shape}")
    n_leads, n = signal.shape
    n_time = attention.shape[1]
    if n % n_time:
        raise ValueError(f"{n} samples do not split into {n_time} equal patches")
    t = np.arange(n) / fs
    edges = np.arange(n_time + 1) * (n / n_time) / fs
    xs, ys, z, y_edges, annotations = [], [], [], [], []
    for r in range(n_leads):
        base = (n_leads - 1 - r) * ATTENTION_ROW + 6.0
        xs.append(np.append(t, np.nan))
        ys.append(np.append(base + np.clip(signal[r], -ATTENTION_CLIP_SD, ATTENTION_CLIP_SD), np.nan))
        annotations.append(dict(x=0, y=base, xref="paper", text=f"<b>{leads[r]}</b>", showarrow=False,
                                xanchor="right", font=dict(size=14)))
    # one heatmap for every band: the rows between bands are NaN, which plotly leaves transparent
    for r in reversed(range(n_leads)):
        band_top = (n_leads - 1 - r) * ATTENTION_ROW + 1.5
        if y_edges:
            z.append([np.nan] * n_time)
        else:
            y_edges.append(band_top - 1.5)
        y_edges.append(band_top)
        z.append(attention[r].tolist())
        y_edges.append(band_top + ATTENTION_ROW - 1.5)
    y_edges = y_edges[:-1]
    # one scale over all leads from the map's own minimum to its maximum: attention near uniform (1/300 per
    # patch) would otherwise colour every cell alike; the colour bar keeps the values readable
    finite = attention[np.isfinite(attention)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    heat = go.Heatmap(z=z, x=edges, y=y_edges, zmin=lo, zmax=hi if hi > lo else lo + 1e-9,
                      colorscale=ATTENTION_COLOURS,
                      colorbar=dict(title=dict(text=colour_label, side="right"), thickness=12, len=0.6),
                      hovertemplate="%{x:.2f} s · " + colour_label + " %{z:.4f}<extra></extra>", name=colour_label)
    trace = go.Scatter(x=np.concatenate(xs), y=np.concatenate(ys), mode="lines", hoverinfo="skip",
                       line=dict(color="black", width=1), showlegend=False, name="ECG")
    fig = go.Figure([heat, trace])
    fig.update_xaxes(title_text="seconds (the model's input window)", range=[0, n / fs], showgrid=True,
                     gridcolor="rgba(0,0,0,0.08)", zeroline=False)
    fig.update_yaxes(visible=False, range=[0, n_leads * ATTENTION_ROW + 1])
    fig.update_layout(annotations=annotations, height=60 * n_leads + 90, plot_bgcolor="white",
                      margin=dict(l=50, r=10, t=40 if title else 10, b=50),
                      title=dict(text=title) if title else None)
    return fig
