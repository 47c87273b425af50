"""Bookmarks: saved views (a page's query parameters and selection) with a title and a note."""
from __future__ import annotations

import json

import pandas as pd


def list_bookmarks(store) -> pd.DataFrame:
    return store.query_df("SELECT bookmark_id, title, note, page, view_params, selection, created_at "
                          "FROM bookmarks ORDER BY created_at DESC, bookmark_id DESC")


def save_bookmark(store, title: str, note: str, page: str, view_params: dict, selection: dict | None) -> int:
    """Save a view (its query params) and optional selection; returns the bookmark id."""
    title = (title or "").strip()
    if not title:
        raise ValueError("a bookmark needs a title")
    with store.write() as con:
        return int(con.execute(
            "INSERT INTO bookmarks (title, note, page, view_params, selection) VALUES (?, ?, ?, ?, ?) "
            "RETURNING bookmark_id",
            [title, note or "", page, json.dumps(view_params, sort_keys=True),
             json.dumps(selection, sort_keys=True) if selection else None]).fetchone()[0])
