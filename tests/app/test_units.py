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
        assert lead in texts
    with pytest.raises(ValueError, match="n_leads=12"):
        ecg_paper_figure(np.zeros((11, n)), fs)


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
    assert "CRBBB + SB (n=1)" in titles and "CRBBB + AFIB (n=0)" in titles


def test_prevalence_f1_title_says_why_r_is_undefined():
    from app.figures import prevalence_f1_figure
    table = pd.DataFrame({"label": ["SB", "SR", "AFIB", "macro"], "prevalence": [0.3, 0.2, 0.1, np.nan],
                          "f1": [0.0, 0.0, 0.0, 0.0]})
    fig = prevalence_f1_figure(table, {"r": float("nan"), "n": 3})
    assert fig.layout.title.text == "Pearson r undefined: F1 is the same for every class (n = 3)"
    fig = prevalence_f1_figure(table.assign(f1=[0.9, 0.5, 0.2, 0.5]), {"r": 0.98, "n": 3, "slope": 3.5,
                                                                       "intercept": -0.1})
    assert fig.layout.title.text == "Pearson r = 0.98 (n = 3)" and len(fig.data) == 2
