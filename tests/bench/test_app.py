"""bench/app.py builds its workspaces and measures the server side (the browser part runs in `./run bench app`)."""
from bench import app as bench_app


def test_bench_app_builds_both_workspaces_and_times_the_server_side(tmp_path):
    store, weights = bench_app.build_workspace(tmp_path / "big", 2_000)
    out = bench_app.server_side(store, weights)
    assert out["n_points"] >= 2_000 and out["json_bytes"] > 0 and out["query_s"] >= 0
    tiny, _ = bench_app.build_workspace(tmp_path / "tiny", 10)
    assert bench_app.server_side(tiny, weights)["n_points"] < 100   # the 10 points (plus the fixture's few)
    assert set(bench_app.PAGES) >= {"overview", "explore", "compare", "subclusters", "metrics", "jobs", "methods"}
