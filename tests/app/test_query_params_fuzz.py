"""Hostile query parameters: no page may raise (issue 11, points 13-14 and the systematic fuzz test).

Hypothesis draws the pages' own parameters (and stray ones) with random strings, huge and negative
numbers, unicode, path fragments and malformed selections; each page must render without an exception.
"""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as hs
from streamlit.testing.v1 import AppTest

from app import state
from app.testing import fill_store

REPO = Path(__file__).resolve().parents[2]
PAGES = ("overview", "explore", "compare", "subclusters", "metrics", "jobs")
PARAMS = ("w", "base", "view", "colour", "cls", "labels", "age", "sex", "ds", "fold", "sel", "rec", "review",
          "run", "epoch", "label", "cmr", "scope")

numbers = hs.one_of(hs.integers(min_value=-10**30, max_value=10**30).map(str),
                    hs.floats(allow_nan=True, allow_infinity=True).map(repr),
                    hs.sampled_from(["1e308", "-1e308", "nan", "inf", "-0", "0x10", "1_000", "9" * 400]))
fragments = hs.sampled_from(["../../etc/passwd", "/etc/shadow", "..\\..\\win.ini", "%2e%2e%2f", "\x00", "chapman:",
                             ":", "chapman:../../x", "ecg-random", "run-ecg-demo-e010", "acdc", "cross_domain",
                             "b:1,2,3", "l:1,2,3,4", "b:nan,1,2,3", "l:" + ",".join(["1"] * 5000),
                             ";" * 300, "b:" + ",".join(["1e308"] * 4), "20-10", "-5--1", "1e9-1e10", "SB,,SR",
                             "'; DROP TABLE records; --", "<script>alert(1)</script>", "[x](http://e)"])
values = hs.one_of(hs.text(max_size=60), numbers, fragments,
                   hs.lists(hs.one_of(numbers, fragments), max_size=4).map(",".join),
                   hs.lists(hs.floats(allow_nan=False, width=32).map(repr), min_size=0, max_size=12)
                   .map(lambda v: "l:" + ",".join(v)))
query = hs.dictionaries(hs.one_of(hs.sampled_from(PARAMS), hs.text(min_size=1, max_size=8)), values, max_size=6)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_ws")
    fill_store(root, n_chapman=60, n_ptbxl=16, n_acdc=10)
    return root


@pytest.mark.parametrize("page", PAGES)
def test_no_page_raises_on_hostile_query_parameters(page, workspace, monkeypatch):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(workspace))
    monkeypatch.delenv("CARDIO_APP_PASSWORD", raising=False)

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(params=query)
    def check(params):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
        at.query_params.update({k: v.replace("\x00", "") for k, v in params.items()})
        if page != "overview":
            at.switch_page(str(REPO / "pages" / f"{page}.py"))
        at.run()
        assert not at.exception, (params, [e.value for e in at.exception])
    check()


# 13. ?sel=garbage on Sub-clusters (Explore already coped)
@pytest.mark.parametrize("page", ["subclusters", "explore"])
def test_garbage_selection_is_ignored_with_a_warning(page, workspace, monkeypatch):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(workspace))
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.query_params["sel"] = "garbage"
    at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Ignoring the selection in the link" in w.value for w in at.warning)


# 14. a lasso from the URL is bounded
def test_a_huge_lasso_from_the_url_is_thinned_and_bounded():
    n = 100_000 // 2
    text = "l:" + ",".join(f"{i % 97},{i % 89}" for i in range(n))
    if len(text) > state.MAX_SELECTION_CHARS:
        with pytest.raises(ValueError, match="longer than"):
            state.decode_selection(text)
    n = 3000
    text = "l:" + ",".join(f"{i % 9},{i % 7}" for i in range(n))
    assert len(text) <= state.MAX_SELECTION_CHARS
    lasso = state.decode_selection(text)["lasso"][0]
    assert 3 <= len(lasso["x"]) <= state.MAX_LASSO_VERTICES and len(lasso["x"]) == len(lasso["y"])
    with pytest.raises(ValueError, match="regions"):
        state.decode_selection(";".join(["b:0,1,0,1"] * (state.MAX_REGIONS + 1)))
    with pytest.raises(ValueError, match="finite"):
        state.decode_selection("b:nan,1,0,1")
