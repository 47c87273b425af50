"""Review mode leaks nothing (issue 11, point 12 and the systematic leak test).

A store in which every record id and every exact age is a unique marker; every page is rendered in
review mode, with selections (big and single-record), previews (preprocessed and a raw one that fails),
downloads and bookmark links, and no marker may appear in any element, download or URL.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import common, state
from app.testing import checkpoint_id, fill_store, marker_ages, marker_ids
from cardio_core import queries
from cardio_core.store import bookmarks

REPO = Path(__file__).resolve().parents[2]
SIZES = {"chapman": 80, "ptbxl": 20, "acdc": 10}


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    root = tmp_path_factory.mktemp("marked")
    store = fill_store(root, n_chapman=SIZES["chapman"], n_ptbxl=SIZES["ptbxl"], n_acdc=SIZES["acdc"],
                       markers=True)
    ids = [i for d, n in SIZES.items() for i in marker_ids(d, n)]
    ages = [f"{a:.4f}" for d, n in SIZES.items() for a in marker_ages(d, n)]
    # a bookmark saved outside review mode, with a record in its link
    bookmarks.save_bookmark(store, "ward round", "see record", "explore",
                            {"w": checkpoint_id(10), "rec": f"chapman:{marker_ids('chapman', 1)[0]}"}, None)
    return root, store, ids, ages


class Captured:
    """What the pages offered for download in a run (download_button data, deferred ones evaluated)."""

    def __init__(self, monkeypatch):
        import streamlit.elements.widgets.button as button
        self.items: list[str] = []
        original = button.marshall_file

        def spy(coordinates, data, *args, **kwargs):
            value = data() if callable(data) else data
            if hasattr(value, "to_csv"):
                value = value.to_csv()
            self.items.append(value.decode(errors="replace") if isinstance(value, bytes) else str(value))
            return original(coordinates, data, *args, **kwargs)
        monkeypatch.setattr(button, "marshall_file", spy)


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def rendered_text(at) -> str:
    parts = []
    for node in walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        if getattr(node, "type", None) in ("arrow_data_frame", "dataframe", "table"):
            try:
                parts.append(node.value.to_csv())
            except Exception:
                pass
    parts.append(json.dumps(at.query_params.to_dict() if hasattr(at.query_params, "to_dict")
                            else dict(at.query_params)))
    return "\n".join(parts)


def assert_no_marker(text: str, ids, ages, where: str):
    leaked = [m for m in ids if m in text] + [a for a in ages if a in text]
    assert not leaked, f"{where}: {leaked[:5]} leaked"


def open_review(monkeypatch, root, page, **params):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(root))
    monkeypatch.delenv("CARDIO_APP_PASSWORD", raising=False)
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.query_params.update({"review": "1", **params})
    if page != "overview":
        at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_markers_are_in_the_store(marked):
    root, store, ids, ages = marked
    have = set(store.query_df("SELECT record_id FROM records")["record_id"])
    assert set(ids) == have and len(ids) == len(set(ids))


@pytest.mark.parametrize("page,params", [
    ("overview", {}),
    ("explore", {}),
    ("explore", {"sel": "b:-100,100,-100,100"}),                         # everything selected
    ("explore", {"view": "cross_domain"}),
    ("explore", {"w": "cmr-imagenet", "view": "acdc"}),
    ("explore", {"colour": "age"}),
    ("compare", {}),
    ("subclusters", {"sel": "b:-100,100,-100,100"}),
    ("metrics", {}),
    ("jobs", {}),
])
def test_no_marker_on_any_page_in_review_mode(marked, monkeypatch, page, params):
    root, store, ids, ages = marked
    downloads = Captured(monkeypatch)
    at = open_review(monkeypatch, root, page, **params)
    assert_no_marker(rendered_text(at), ids, ages, f"{page} {params}")
    if page not in ("overview", "jobs"):
        assert downloads.items, "the page offers downloads"
    for item in downloads.items:
        assert_no_marker(item, ids, ages, f"{page} download")


def single_point_box(store, weights_id, view="chapman_test"):
    pts = queries.projection_points(store, weights_id, view)
    x, y = pts.iloc[0]["x"], pts.iloc[0]["y"]
    others = pts.iloc[1:]
    gap = float(np.min(np.hypot(others["x"] - x, others["y"] - y))) / 3
    return f"b:{x - gap:.6g},{x + gap:.6g},{y - gap:.6g},{y + gap:.6g}", pts.iloc[0]


def test_a_single_record_selection_shows_no_demographics(marked, monkeypatch):
    root, store, ids, ages = marked
    sel, point = single_point_box(store, checkpoint_id(10))
    at = open_review(monkeypatch, root, "explore", w=checkpoint_id(10), sel=sel)
    assert any("1 selected" in m.value for m in at.markdown)
    text = rendered_text(at)
    assert_no_marker(text, ids, ages, "single-record selection")
    assert f"{float(point['age']):.0f}" not in " ".join(str(d.value.to_dict()) for d in at.dataframe
                                                       if "age_mean" in d.value.columns)
    assert "hidden (< 5)" in text


def test_review_demographics_hide_small_groups():
    pts = pd.DataFrame({"age": [33.0, 70.0, 71.0, 72.0, 73.0, 74.0], "sex": ["F", "M", "M", "F", "M", "F"]})
    demo = queries.selection_summary(pts.assign(labels="SR", dataset_id="chapman"),
                                     np.array([True] + [False] * 5))["demographics"]
    shown = queries.review_demographics(demo)
    assert shown.loc["selected", "age_mean"] == "hidden (< 5)" and "age_sd" not in shown.columns
    assert shown.loc["rest", "age_mean"] == 72 and shown.loc["selected", "n"] == 1


def test_record_in_link_and_raw_preview_failure_stay_deidentified(marked, monkeypatch):
    root, store, ids, ages = marked
    rec = f"chapman:{marker_ids('chapman', SIZES['chapman'])[0]}"
    test_ids = store.query_df("SELECT record_id FROM records WHERE dataset_id = 'chapman' AND split = 'test' "
                              "ORDER BY record_id")["record_id"].tolist()
    rec = f"chapman:{test_ids[0]}"
    at = open_review(monkeypatch, root, "explore", w=checkpoint_id(10), rec=rec)
    assert "rec" not in at.query_params  # the record never goes into a review-mode URL
    assert_no_marker(rendered_text(at), ids, ages, "preview")
    # the raw signal of this record cannot be read (its file is outside the roots): the warning names no file
    control = [e for e in walk(at._tree) if getattr(e, "type", None) == "button_group"]
    assert control, "the raw / preprocessed control is shown"
    at.session_state["which-explore"] = "raw"
    at.run()
    warnings = [w.value for w in at.warning]
    assert any("Cannot show this record" in w for w in warnings), warnings
    assert_no_marker(rendered_text(at), ids, ages, "raw preview warning")
    assert any("<path>" in w for w in warnings)


def test_bookmark_links_drop_the_record_in_review_mode():
    params = {"w": "x", "rec": "chapman:JS00001", "sel": "b:0,1,0,1"}
    assert "rec" not in common.bookmark_params(params, review=True)
    assert common.bookmark_params(params, review=False)["rec"] == "chapman:JS00001"


def test_age_slider_bounds_are_band_snapped_in_review_mode(marked, monkeypatch):
    root, store, ids, ages = marked
    at = open_review(monkeypatch, root, "explore", w=checkpoint_id(10))
    slider = at.slider(key="ex_age")
    assert slider.min % 10 == 0 and slider.max % 10 == 0 and slider.step == 10
    assert all(v % 10 == 0 for v in slider.value)


def test_log_tails_errors_and_stages_are_redacted():
    text = "problem reading /data/chapman/MKC0001Z.hea: record MKC0001Z (patient 970000013) at epoch 3"
    out = queries.redact_text(text, {"MKC0001Z", "970000013"})
    assert "MKC0001Z" not in out and "970000013" not in out and "/data/" not in out and "epoch 3" in out


# 15. bookmark titles and notes are user text, never Markdown
def test_bookmark_titles_and_notes_are_escaped(tmp_path, monkeypatch):
    store = fill_store(tmp_path, n_chapman=40, n_ptbxl=10, n_acdc=10, with_jobs=False, with_arrays=False)
    bookmarks.save_bookmark(store, "[click me](https://evil.example/steal)", "![](https://track.example/p.png)",
                            "explore", {}, None)
    monkeypatch.setenv("CARDIO_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60).run()
    assert not at.exception
    links = [e for e in walk(at._tree) if getattr(e, "type", None) == "page_link"]
    labels = [e.proto.label for e in links]
    assert labels == [r"\[click me\]\(https\://evil\.example/steal\)"]
    notes = [c.value for c in at.caption if "track" in c.value]
    assert notes == [r"\!\[\]\(https\://track\.example/p\.png\)"]
    assert common.escape_markdown(":red[x] **b**") == r"\:red\[x\] \*\*b\*\*"
