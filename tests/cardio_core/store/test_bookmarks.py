"""cardio_core.store.bookmarks: saved views."""
import pytest

from app.testing import fill_store
from cardio_core.store import bookmarks


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return fill_store(tmp_path_factory.mktemp("ws"))


def test_bookmarks_round_trip(store):
    bid = bookmarks.save_bookmark(store, "AFIB island", "look here", "explore", {"w": "x", "sel": "b:0,1,0,1"}, None)
    marks = bookmarks.list_bookmarks(store)
    assert bid in marks["bookmark_id"].tolist()
    assert marks.set_index("bookmark_id").loc[bid, "title"] == "AFIB island"
    with pytest.raises(ValueError, match="title"):
        bookmarks.save_bookmark(store, "  ", "", "explore", {}, None)
