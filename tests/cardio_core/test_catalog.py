"""cardio_core.catalog: registering weights, resolving a spec's weights, and opening them into a model once."""
import pytest
import torch

from cardio_core.catalog import (default_parent, get_weights, open_weights, register_weights, resolve_weights,
                                 scan_weights_dir, weights_files)
from cardio_core.config import Workspace
from cardio_core.errors import CardioError
from cardio_core.models import EcgViT, save_checkpoint
from cardio_core.models import weights as weights_module
from cardio_core.store import Store

TINY = dict(signal_length=500, embed_dim=32, depth=1, num_heads=2, num_classes=20)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def store(ws):
    return Store(ws.db_path)


def write_encoder(path, *, head_trained=False, seed=0):
    torch.manual_seed(seed)
    return save_checkpoint(path, EcgViT(**TINY), meta={"head_trained": head_trained})


def test_scan_registers_only_weight_files_and_records_problems(ws, store):
    write_encoder(ws.weights_dir / "enc.pth")
    (ws.weights_dir / "notes.txt").write_text("not weights")
    (ws.weights_dir / "model.safetensors").write_bytes(b"\0" * 16)  # not a torch archive: never offered
    (ws.weights_dir / "broken.pt").write_bytes(b"garbage")
    assert [p.name for p in weights_files(ws)] == ["broken.pt", "enc.pth"]
    found = scan_weights_dir(store, ws)
    assert len(found) == 1 and found[0].startswith("enc-")
    assert get_weights(store, found[0])["modality"] == "ecg"
    problems = store.query("SELECT file, stage FROM problems")
    assert problems == [(str(ws.weights_dir / "broken.pt"), "weights")]
    assert scan_weights_dir(store, ws) == []     # unchanged files are not registered twice


def test_resolve_weights_by_id_by_file_name_or_default(ws, store):
    assert resolve_weights(store, ws, None, "ecg") == "random-ecg"           # nothing registered: random init
    write_encoder(ws.weights_dir / "enc.pth")
    wid = resolve_weights(store, ws, "enc.pth", "ecg")                       # a file name: registered on first use
    assert resolve_weights(store, ws, wid, "ecg") == wid
    assert default_parent(store, "ecg") == wid
    with pytest.raises(CardioError, match="'nope.pth': not a registered weights id nor a loadable file"):
        resolve_weights(store, ws, "nope.pth", "ecg")
    with pytest.raises(CardioError, match="are ECG weights; this job needs CMR weights"):
        resolve_weights(store, ws, wid, "cmr")


def test_open_weights_reads_the_file_once_and_carries_report_and_meta(ws, store, monkeypatch):
    path = write_encoder(ws.weights_dir / "ft.pth", head_trained=True)
    register_weights(store, weights_id="ft", modality="ecg", name="ft", kind="checkpoint", path=str(path))
    reads = []
    real = weights_module.read_checkpoint
    monkeypatch.setattr(weights_module, "read_checkpoint", lambda p: reads.append(p) or real(p))
    encoder = open_weights(store, "ft")
    assert len(reads) == 1
    assert encoder.head_trained and encoder.meta["head_trained"] is True
    assert encoder.report.loaded_keys > 0 and encoder.report.missing_keys == []
    torch.manual_seed(0)   # the seed write_encoder saved the network with
    expected = EcgViT(**TINY)
    for key, value in expected.state_dict().items():
        assert torch.equal(encoder.model.state_dict()[key], value), key


def test_the_random_baseline_is_the_same_network_every_time(store):
    register_weights(store, weights_id="random-ecg", modality="ecg", name="random", kind="random")
    a, b = open_weights(store, "random-ecg"), open_weights(store, "random-ecg")
    assert a.report is None and a.source is None and not a.head_trained
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_unknown_weights_are_named(store):
    with pytest.raises(CardioError, match="unknown weights 'ghost'"):
        get_weights(store, "ghost")


def test_links_out_of_weights_dir_are_refused_and_never_offered(tmp_path, monkeypatch):
    """Issue 11, point 6: a symlink in weights/ pointing outside the workspace is neither registered nor offered."""
    import os
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from cardio_core.catalog import outside_links, scan_weights_dir, weights_files
    from cardio_core.config import Workspace
    from cardio_core.models import EcgViT
    from cardio_core.models.weights import save_checkpoint
    from cardio_core.store import Store

    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = save_checkpoint(outside / "secret.pth", EcgViT(signal_length=500, embed_dim=32, depth=1, num_heads=4),
                             meta={"head_trained": False})
    os.symlink(target, ws.weights_dir / "signal_encoder_link.pth")
    os.symlink(tmp_path / "missing.pth", ws.weights_dir / "dangling.pth")
    inside = save_checkpoint(ws.weights_dir / "real.pth", EcgViT(signal_length=500, embed_dim=32, depth=1,
                                                                 num_heads=4), meta={"head_trained": False})
    os.symlink(inside, ws.weights_dir / "alias.pth")  # a link inside weights/ is fine

    assert [p.name for p in weights_files(ws)] == ["alias.pth", "real.pth"]
    assert [p.name for p in outside_links(ws)] == ["dangling.pth", "signal_encoder_link.pth"]
    scan_weights_dir(store, ws)
    paths = {r[0] for r in store.query("SELECT path FROM weights WHERE path IS NOT NULL")}
    assert str(ws.weights_dir / "signal_encoder_link.pth") not in paths and str(target) not in paths
    problems = store.query("SELECT file, problem FROM problems WHERE stage = 'weights'")
    assert any(f.endswith("signal_encoder_link.pth") and "outside weights/" in p for f, p in problems)

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    at = AppTest.from_file(str(repo / "app" / "main.py"), default_timeout=60)
    at.switch_page(str(repo / "pages" / "jobs.py"))
    at.run()
    assert not at.exception
    offered = " ".join(str(o) for o in at.selectbox(key="job_weights").options)
    text = " ".join(c.value for c in at.caption)
    assert "signal_encoder_link" not in offered and "signal_encoder_link" not in text


def write_released_ecg(path, seed=0):
    torch.manual_seed(seed)
    body = {k: v for k, v in EcgViT().state_dict().items()
            if not k.startswith(("attention_pool", "fc_norm", "head"))}
    torch.save({"model": body}, path)


def write_released_image(path, seed=0):
    from cardio_core.models import CmrResNet50
    torch.manual_seed(seed)
    body = {f"encoder_imaging.{k}": v for k, v in CmrResNet50().state_dict().items() if not k.startswith("fc.")}
    torch.save({"state_dict": body}, path)


def test_the_released_mmcl_files_register_as_one_family_with_lineage(ws, store):
    for i, stem in enumerate(("signal_encoder_mdm", "signal_encoder_mmcl", "signal_encoder_mmcl_wo_mdm")):
        write_released_ecg(ws.weights_dir / f"{stem}.pth", seed=i)
    for i, stem in enumerate(("image_encoder_simclr", "image_encoder_mmcl")):
        write_released_image(ws.weights_dir / f"{stem}.pth", seed=i)
    write_encoder(ws.weights_dir / "my_own.pth")  # not a family member
    scan_weights_dir(store, ws)
    rows = {r[0]: r[1:] for r in store.query(
        "SELECT regexp_replace(name, '\\.pth$', ''), family, stage, parent_weights_id, weights_id FROM weights")}
    wid = {stem: r[3] for stem, r in rows.items()}
    assert rows["signal_encoder_mdm"][:3] == ("mmcl-released", "mdm", None)
    assert rows["signal_encoder_mmcl"][:3] == ("mmcl-released", "mmcl", wid["signal_encoder_mdm"])
    assert rows["signal_encoder_mmcl_wo_mdm"][:3] == ("mmcl-released", "mmcl_wo_mdm", None)
    assert rows["image_encoder_simclr"][:3] == ("mmcl-released", "simclr", None)
    assert rows["image_encoder_mmcl"][:3] == ("mmcl-released", "mmcl", wid["image_encoder_simclr"])
    assert rows["my_own"][:2] == (None, None)
    pairs = store.query("SELECT pair_id, ecg_weights_id, cmr_weights_id, projectors_path FROM encoder_pairs")
    # only the MMCL pair is complete; its projectors were never published
    assert pairs == [("mmcl-released-mmcl", wid["signal_encoder_mmcl"], wid["image_encoder_mmcl"], None)]


def test_a_family_name_on_the_wrong_modality_is_reported_not_linked(ws, store):
    write_released_ecg(ws.weights_dir / "image_encoder_mmcl.pth")
    scan_weights_dir(store, ws)
    scan_weights_dir(store, ws)  # reported once, not on every scan
    assert store.query("SELECT family FROM weights") == [(None,)]
    (problem,) = store.query("SELECT problem FROM problems WHERE stage = 'weights'")
    assert "named like the released CMR file image_encoder_mmcl but holds ECG weights" in problem[0]
