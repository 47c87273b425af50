"""Pure parts of the app: URL state encoding, the auth rules, the ECG-paper and page figures."""

import numpy as np
import pandas as pd
import pytest


from app import auth, state
from app.ecg_paper import MM_PER_MV, MM_PER_S, cmr_frames_figure, ecg_paper_figure
from cardio_core.errors import CardioError


def test_selection_round_trips_through_the_url():
    sel = {"box": [{"x": [-1.23456, 2.5], "y": [0.0, 3.0]}],
           "lasso": [{"x": [0, 1, 1, 0], "y": [0, 0, 1, 1]}]}
    text = state.encode_selection(sel)
    assert "JS" not in text and text.startswith("b:")
    back = state.decode_selection(text)
    assert back["box"][0]["x"] == pytest.approx([-1.235, 2.5])
    assert back["lasso"][0]["y"] == [0, 0, 1, 1]
    assert state.encode_selection(None) == "" and state.decode_selection("") == {"box": [], "lasso": []}
    with pytest.raises(ValueError, match="b:x0,x1,y0,y1"):
        state.decode_selection("b:1,2,3")
    with pytest.raises(ValueError, match="not a list of numbers"):
        state.decode_selection("b:1,x,3,4")


def test_long_lasso_is_thinned():
    xs = list(np.linspace(0, 1, 2000))
    text = state.encode_selection({"lasso": [{"x": xs, "y": xs}]})
    assert len(state.decode_selection(text)["lasso"][0]["x"]) <= state.MAX_LASSO_VERTICES + 1


def test_lists_and_ranges():
    assert state.decode_list("SB,XX,SR", allowed=["SB", "SR"]) == ["SB", "SR"]
    assert state.decode_range(state.encode_range(20, 65.5), (0, 100)) == (20, 65.5)
    assert state.decode_range("80-20", (0, 100)) == (0, 100)
    assert state.decode_range("junk", (0, 100)) == (0, 100)


def test_auth_requires_password_or_oidc(monkeypatch, tmp_path):
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    with pytest.raises(CardioError, match="CARDIO_APP_PASSWORD"):
        auth.require_auth_configured(secrets_paths=[tmp_path / "missing.toml"])
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "https://h/oauth2callback"\ncookie_secret = "0123456789abcdef"\n'
                       'client_id = "c"\nclient_secret = "s"\nserver_metadata_url = "https://idp/.well-known/x"\n'
                       '[cardioscope]\nallowed_users = ["@example.org"]\n')
    assert auth.require_auth_configured(secrets_paths=[secrets]) == "oidc"
    monkeypatch.setenv(auth.PASSWORD_ENV, "correct horse battery")
    assert auth.require_auth_configured(secrets_paths=[]) == "password"
    assert auth.check_password("correct horse battery") and not auth.check_password("wrong")
    assert auth.is_loopback("127.0.0.1") and not auth.is_loopback("0.0.0.0")


def test_ecg_paper_scale_is_25_mm_per_s_and_10_mm_per_mv():
    fs, n = 500.0, 5000
    signal = np.zeros((12, n))
    signal[1, 2500] = 1.0  # a 1 mV spike in lead II at t = 5 s
    fig = ecg_paper_figure(signal, fs)
    x, y = np.asarray(fig.data[0].x, float), np.asarray(fig.data[0].y, float)
    # the rhythm strip is the longest run between NaN separators: 10 s = 250 mm
    runs = np.split(np.arange(len(x)), np.where(np.isnan(x))[0])
    strip = max(runs, key=len)[1:] if np.isnan(x[max(runs, key=len)[0]]) else max(runs, key=len)
    assert np.nanmax(x[strip]) - np.nanmin(x[strip]) == pytest.approx((n - 1) / fs * MM_PER_S)
    base = np.nanmedian(y[strip])
    assert np.nanmax(y[strip]) - base == pytest.approx(MM_PER_MV)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.xaxis.dtick == 5 and fig.layout.xaxis.minor.dtick == 1
    texts = [a.text for a in fig.layout.annotations]
    for lead in ("I", "aVR", "V1", "V6", "II (rhythm)"):
        assert f"<b>{lead}</b>" in texts
    assert "10 mm/mV" in texts[-1]
    assert min(a.font.size for a in fig.layout.annotations) >= 16           # legible on a projector
    height_mm = fig.layout.yaxis.range[1] - fig.layout.yaxis.range[0]
    # tall enough that the page's width binds the 1:1 paper (>= 5 px/mm from 1,350 px wide; checked in Chromium)
    assert (fig.layout.height - 60) / height_mm >= 6
    with pytest.raises(ValueError, match="n_leads=12"):
        ecg_paper_figure(np.zeros((11, n)), fs)


def test_preprocessed_ecg_is_labelled_z_scores_and_clipped_to_its_row():
    from app.ecg_paper import MM_PER_SD, ROW_HEIGHT_MM
    fs, n = 500.0, 5000
    signal = np.zeros((12, n))
    signal[:, 1000] = 50.0     # a huge z-score in every lead
    fig = ecg_paper_figure(signal, fs, units="SD")
    footer = fig.layout.annotations[-1].text
    assert "z-scores, not mV" in footer and f"{MM_PER_SD:g} mm/SD" in footer and "10 mm/mV" not in footer
    assert fig.data[1].name == "1 SD" and fig.data[1].line.color != "black"
    y = np.asarray(fig.data[0].y, float)
    bands = np.arange(4) * ROW_HEIGHT_MM + ROW_HEIGHT_MM / 2          # the baselines of the four rows
    nearest = bands[np.abs(y[:, None] - bands[None, :]).argmin(1)]
    ok = np.isnan(y) | (np.abs(y - nearest) <= ROW_HEIGHT_MM / 2)
    assert ok.all()                                                   # no sample crosses into another row
    with pytest.raises(ValueError, match="units"):
        ecg_paper_figure(signal, fs, units="unit (normalised)")


def test_cmr_frames_figure():
    fig = cmr_frames_figure(np.random.default_rng(0).random((3, 32, 32)))
    assert len(fig.data) == 3 and [a.text for a in fig.layout.annotations] == ["ED", "mid", "ES"]
    with pytest.raises(ValueError, match="3, height, width"):
        cmr_frames_figure(np.zeros((2, 4, 4)))


def test_scatter_marks_multi_labelled_and_hides_ids_in_review():
    from app.figures import facet_figure, scatter_figure
    pts = pd.DataFrame({"dataset_id": "chapman", "record_id": ["JS1", "JS2", "JS3"], "x": [0, 1, 2], "y": [0, 1, 2],
                        "age": [45.0, 61.0, 70.0], "sex": ["M", "F", "F"], "bmi": np.nan, "bmi_category": None,
                        "split": "test", "fold": pd.array([pd.NA] * 3, dtype="Int64"),
                        "labels": ["SB", "CRBBB,SB", "AFIB"], "rhythm": ["SB", "SB", "AFIB"],
                        "multi": [False, True, False]})
    fig = scatter_figure(pts, "rhythm")
    sb = {t.marker.symbol: t for t in fig.data if t.name == "SB"}
    assert list(sb["circle"].customdata) == [0] and list(sb["diamond"].customdata) == [1]  # JS2 is multi-labelled
    assert sb["circle"].showlegend and not sb["diamond"].showlegend  # one legend entry per label
    assert all(t.type == "scattergl" for t in fig.data)
    assert "JS1" in "".join(sb["circle"].text)
    review = scatter_figure(pts, "rhythm", review=True)
    assert not any("JS" in "".join(t.text) for t in review.data) and "45" not in "".join(review.data[0].text)
    facets = facet_figure(pts, "CRBBB", ["SB", "AFIB"])
    titles = [a.text for a in facets.layout.annotations]
    assert "CRBBB + SB: n = 1, too few" in titles and "CRBBB + AFIB: n = 0, too few" in titles


def test_prevalence_f1_title_says_why_r_is_undefined():
    from app.figures import prevalence_f1_figure
    table = pd.DataFrame({"label": ["SB", "SR", "AFIB", "macro"], "prevalence": [0.3, 0.2, 0.1, np.nan],
                          "f1": [0.0, 0.0, 0.0, 0.0]})
    fig = prevalence_f1_figure(table, {"r": float("nan"), "n": 3})
    assert fig.layout.title.text == "Pearson r undefined: F1 is the same for every class (n = 3)"
    fig = prevalence_f1_figure(table.assign(f1=[0.9, 0.5, 0.2, 0.5]), {"r": 0.98, "n": 3, "slope": 3.5,
                                                                       "intercept": -0.1})
    assert fig.layout.title.text == "Pearson r = 0.98 (n = 3)" and len(fig.data) == 2


def test_evolution_is_an_animation_whose_axes_fit_every_frame_without_squeezing():
    from app.figures import evolution_figure
    rng = np.random.default_rng(0)
    def frame(spread):
        return pd.DataFrame({"x": rng.normal(0, spread, 200), "y": rng.normal(0, spread, 200),
                             "rhythm": rng.choice(["SR", "AFIB"], 200), "record_id": [f"r{i}" for i in range(200)],
                             "dataset_id": "chapman", "labels": "SR", "age": 50.0, "sex": "F"})
    # the baseline spreads 40 times wider than the fine-tuned frames (what squeezed them before)
    frames = [(0, frame(40.0)), (2, frame(1.0)), (4, frame(1.0))]
    fig = evolution_figure(frames, colours={"SR": "#2ca02c", "AFIB": "#d62728"})
    assert [f.name for f in fig.frames] == ["baseline", "epoch 2", "epoch 4"]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "❚❚ Pause"]
    assert [s.label for s in fig.layout.sliders[0].steps] == ["baseline", "epoch 2", "epoch 4"]
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    for f in fig.frames:
        xs = np.concatenate([np.asarray(t.x, float) for t in f.data])
        ys = np.concatenate([np.asarray(t.y, float) for t in f.data])
        assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1
        assert np.ptp(xs) > 0.5 * (x1 - x0)          # every frame fills the axes: none is squeezed


def _points(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "dataset_id": ["chapman", "ptbxl"] * (n // 2),
                         "record_id": [f"r{i}" for i in range(n)], "labels": "SR", "rhythm": "SR",
                         "multi": False, "age": rng.uniform(20, 90, n), "sex": rng.choice(["F", "M"], n),
                         "bmi": 25.0, "bmi_category": "normal", "split": "test", "fold": pd.array([None] * n, "Int64")})


def test_review_mode_charts_are_legible_and_the_toolbar_clears_the_legend():
    from app.figures import REVIEW_FONT, scatter_figure, silhouette_bars
    fig = scatter_figure(_points(), "sex", review=True)
    lay = fig.layout
    assert lay.legend.font.size >= 18 and lay.xaxis.title.font.size >= 18 and lay.hoverlabel.font.size >= 18
    assert REVIEW_FONT >= 18 and lay.margin.t >= 40 and lay.legend.yanchor == "top"
    table = pd.DataFrame({"label": ["SR"], "baseline_value": [0.1], "baseline_ci_low": [0.0], "baseline_ci_high": [0.2],
                          "other_value": [0.2], "other_ci_low": [0.1], "other_ci_high": [0.3]})
    assert silhouette_bars(table, "a", "b", review=True).layout.legend.font.size >= 18


def test_ptbxl_overlay_colours_by_age_bands_on_an_ordered_palette():
    from app.figures import AGE_BAND_COLOURS, AGE_BAND_NAMES, cross_domain_figure
    fig = cross_domain_figure(_points(), colour_by="age", review=True)
    names = [t.name for t in fig.data]
    assert any(n.startswith("PTB-XL ") for n in names) and any(n.startswith("Chapman ") for n in names)
    bands = [n.split(" ", 1)[1] for n in names if n.startswith("Chapman ")]
    assert bands == sorted(bands, key=AGE_BAND_NAMES.index)     # legend in age order
    # sequential: the palette's lightness rises monotonically from the youngest band to the oldest
    def lightness(colour):
        r, g, b = (int(v) for v in colour[colour.index("(") + 1:-1].split(","))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    values = [lightness(AGE_BAND_COLOURS[b]) for b in AGE_BAND_NAMES]
    assert values == sorted(values)
    sex = cross_domain_figure(_points(), colour_by="sex")
    assert {t.name for t in sex.data} >= {"Chapman F", "PTB-XL M"}


def test_prevalence_labels_of_close_points_do_not_pile_up():
    from app.figures import label_positions
    x = [0.10, 0.101, 0.102, 0.5, 0.9]
    y = [0.50, 0.502, 0.499, 0.1, 0.9]
    pos = label_positions(x, y)
    assert len(set(pos[:3])) == 3 and len(pos) == 5


def test_epoch_axes_have_integer_ticks():
    from app.figures import probe_figure
    trend = pd.DataFrame({"epoch": [0, 2, 4, 6], "name": "knn_purity", "value": [0.4, 0.5, 0.6, 0.7]})
    fig = probe_figure(trend)
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.xaxis.dtick == 1


def test_facets_of_fewer_than_five_records_draw_no_density():
    from app.figures import facet_figure
    pts = _points(60)
    pts["labels"] = ["CRBBB,SR"] * 3 + ["CRBBB,AFIB"] * 12 + ["SR"] * 45
    fig = facet_figure(pts, "CRBBB", ["SR", "AFIB"])
    titles = [a.text for a in fig.layout.annotations if a.text]
    assert "CRBBB + SR: n = 3, too few" in titles and "CRBBB + AFIB (n = 12)" in titles
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 4     # two marginal curves (x, y) x two styles, for the AFIB panel only


def _many(n, seed=0):
    rng = np.random.default_rng(seed)
    rhythm = np.where(np.arange(n) < 30, "PACE", rng.choice(["SR", "AFIB", "SB"], n))  # PACE: a rare label
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "dataset_id": "chapman",
                         "record_id": [f"JS{i:06d}" for i in range(n)], "labels": rhythm, "rhythm": rhythm,
                         "multi": False, "age": rng.uniform(20, 90, n), "sex": rng.choice(["F", "M"], n),
                         "bmi": 25.0, "bmi_category": "normal", "split": "test", "fold": pd.array([None] * n, "Int64")})


def test_a_large_scatter_draws_a_fixed_sample_per_colour_and_says_so():
    from app.figures import DRAW_MIN_PER_STRATUM, drawn_subset, scatter_figure
    pts = _many(20_000)
    keep = drawn_subset(pts, 2000, pts["rhythm"].to_numpy())
    assert 1900 <= keep.sum() <= 2100
    for lab in ("SR", "AFIB", "SB"):                       # each colour keeps its share of the budget
        share = (pts["rhythm"] == lab).mean()
        assert abs(keep[pts["rhythm"].eq(lab).to_numpy()].sum() - 2000 * share) <= 2
    assert keep[pts["rhythm"].eq("PACE").to_numpy()].all()  # a rare label is drawn whole (30 < the floor)
    assert DRAW_MIN_PER_STRATUM >= 30
    # the choice follows the record, not the row order or the checkpoint: the same records in every view
    shuffled = pts.sample(frac=1, random_state=1)
    again = drawn_subset(shuffled, 2000, shuffled["rhythm"].to_numpy())
    assert set(shuffled["record_id"][again]) == set(pts["record_id"][keep])
    moved = pts.assign(x=pts["x"] * 3 + 1)
    assert (drawn_subset(moved, 2000, moved["rhythm"].to_numpy()) == keep).all()
    assert drawn_subset(pts.head(50), 2000).all() and drawn_subset(pts, None).all()
    with pytest.raises(ValueError, match="budget"):
        drawn_subset(pts, 0)

    fig = scatter_figure(pts, "rhythm", max_points=2000)
    drawn_pos = np.concatenate([np.asarray(t.customdata) for t in fig.data])
    assert len(drawn_pos) == keep.sum() and set(drawn_pos) == set(np.flatnonzero(keep))  # customdata: row positions
    note = " ".join(a.text for a in fig.layout.annotations)
    assert f"drawn: {keep.sum():,} of 20,000 records" in note
    (x0, x1) = fig.layout.xaxis.range
    assert x0 <= pts["x"].min() and pts["x"].max() <= x1       # the axes fit every record, drawn or not
    full = scatter_figure(pts, "rhythm", max_points=None)
    assert sum(len(t.x) for t in full.data) == 20_000 and not full.layout.annotations


def test_the_overlay_facets_and_evolution_draw_within_their_budgets():
    from app.figures import cross_domain_figure, evolution_figure, facet_figure
    pts = _many(12_000)
    pts["dataset_id"] = np.where(np.arange(len(pts)) % 3 == 0, "ptbxl", "chapman")
    for colour in ("rhythm", "age", "sex"):
        fig = cross_domain_figure(pts, colour_by=colour, max_points=1500)
        n = sum(len(t.x) for t in fig.data if t.type == "scattergl")
        assert 1400 <= n <= 1700, (colour, n)
        assert any("of 12,000 records" in a.text for a in fig.layout.annotations)
        if colour == "rhythm":   # the contours still come from every Chapman record
            assert any(t.type == "contour" for t in fig.data)
    pts["labels"] = np.where(np.arange(len(pts)) % 2 == 0, "CRBBB," + pts["rhythm"], pts["rhythm"])
    facets = facet_figure(pts, "CRBBB", ["SR", "AFIB"], max_points=500)
    for t in facets.data:
        if t.type == "scattergl":
            assert len(t.x) <= 500
    n_sr = int((pts["labels"] == "CRBBB,SR").sum())
    assert f"CRBBB + SR (n = {n_sr})" in [a.text for a in facets.layout.annotations]  # counts use every record
    frames = [(0, pts), (2, pts.assign(x=pts["x"] * 2)), (4, pts.assign(y=pts["y"] - 1))]
    evo = evolution_figure(frames, colours={}, max_points=1000)
    ids = [sorted(np.concatenate([np.asarray(t.text) for t in f.data])) for f in evo.frames]
    assert ids[0] == ids[1] == ids[2] and 900 <= len(ids[0]) <= 1200   # the same records in every frame
