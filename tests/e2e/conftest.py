"""What must hold in a store after any kill -9 (issue 11), for the kill tests of a fine-tune job and of the demo
chain: the `consistent` fixture (session-scoped, so module fixtures can use it too)."""
import json

import pytest

from cardio_core.store import Store


def assert_consistent(store: Store) -> None:
    """What must hold after any kill: registration and analysis marks never describe half-written state."""
    orphans = store.query("SELECT w.weights_id FROM weights w LEFT JOIN checkpoints c USING (weights_id) "
                          "WHERE w.kind = 'checkpoint' AND c.weights_id IS NULL")
    assert orphans == [], f"checkpoint weights rows without their checkpoints row: {orphans}"
    headless = store.query("SELECT c.weights_id FROM checkpoints c LEFT JOIN weights w USING (weights_id) "
                           "WHERE w.weights_id IS NULL")
    assert headless == [], f"checkpoints rows without weights: {headless}"
    for wid, views in store.query("SELECT weights_id, views FROM analysis_complete"):
        have = {r[0] for r in store.query("SELECT view FROM projections WHERE weights_id = ?", [wid])}
        assert set(json.loads(views)) <= have, (wid, views, have)
        assert store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ?", [wid]) > 0, wid
        assert store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ?", [wid]) > 0, wid
    dup = store.query("SELECT weights_id, dataset_id, record_id, count(*) FROM embeddings GROUP BY ALL "
                      "HAVING count(*) > 1 LIMIT 3")
    assert dup == []


@pytest.fixture(scope="session")
def consistent():
    return assert_consistent
