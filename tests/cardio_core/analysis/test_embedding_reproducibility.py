"""Same weights, same input: bit-identical embeddings in any process (method.md §5, issue 10 point 1).

Each weights file is embedded in two separate Python processes that have used their global RNG
differently beforehand; the vectors must be equal to the bit. Encoders without a trained attention
pool (a released-layout file, an MDM checkpoint) are read through their pre-training pooling, and
the pooling is reported with the vectors.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from cardio_core.models.ecg_vit import EcgViT
from cardio_core.models.weights import FRESH_PREFIXES, WeightsFile, save_checkpoint

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.manual_seed(int(sys.argv[3]))          # a different global RNG state in each process
    torch.randn(int(sys.argv[3]) % 97 + 1)
    from cardio_core.analysis.embeddings import compute_embeddings, pooling_of
    from cardio_core.models.weights import WeightsFile
    model = WeightsFile.read(sys.argv[1]).build().model
    x = np.random.default_rng(0).normal(size=(6, 12, 5000)).astype(np.float32)
    vecs, _ = compute_embeddings(model, x, modality="ecg")
    np.save(sys.argv[2], vecs)
    print(pooling_of(model))
""")


def _body(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith(FRESH_PREFIXES["ecg"])}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    released = d / "signal_encoder_mmcl.pth"
    torch.save({"model": _body(EcgViT())}, released)
    mdm = save_checkpoint(d / "mdm_encoder.pth", EcgViT(), meta={"pretraining": "mdm", "head_trained": False},
                          exclude_prefixes=FRESH_PREFIXES["ecg"])
    finetuned = save_checkpoint(d / "epoch_0002.pth", EcgViT(), meta={"head_trained": True})
    return {"released": released, "mdm": mdm, "finetuned": finetuned}


@pytest.mark.parametrize("kind, pooling", [("released", "mean_norm"), ("mdm", "mean_norm"),
                                           ("finetuned", "attention")])
def test_two_processes_give_bit_identical_embeddings(files, kind, pooling, tmp_path):
    outs, poolings = [], []
    for i, seed in enumerate((3, 12345)):
        out = tmp_path / f"{kind}{i}.npy"
        res = subprocess.run([sys.executable, "-c", SCRIPT, str(files[kind]), str(out), str(seed)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        poolings.append(res.stdout.strip().splitlines()[-1])
        outs.append(np.load(out))
    assert poolings == [pooling, pooling]
    assert outs[0].shape == (6, 384)
    assert outs[0].tobytes() == outs[1].tobytes()


def test_pretraining_pooling_is_the_patch_mean_through_the_final_norm(files):
    model = WeightsFile.read(files["released"]).build().model.eval()
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 1, 12, 2500)).astype(np.float32))
    with torch.inference_mode():
        tokens = model.forward_tokens(x)
        expected = model.norm(tokens[:, 1:].mean(dim=1))
        assert torch.equal(model.forward_features(x), expected)
    assert model.attention_pool is None            # nothing random is in the way
    assert WeightsFile.read(files["released"]).embedding_pool == "mean_norm"
    assert WeightsFile.read(files["finetuned"]).embedding_pool == "attention"


def test_finetuning_pool_is_initialised_from_the_run_seed(files):
    from cardio_core.training.modules import build_model
    from cardio_core.training.recipes import get_recipe
    recipe = get_recipe("demo_ecg", seed=7)
    torch.manual_seed(0)
    a, _ = build_model(recipe, files["released"])
    torch.randn(1000)                              # the global RNG moved on
    b, _ = build_model(recipe, files["released"])
    c, _ = build_model(get_recipe("demo_ecg", seed=8), files["released"])
    for key in ("attention_pool.in_proj_weight", "attention_pool.out_proj.weight", "head.weight"):
        assert torch.equal(a.state_dict()[key], b.state_dict()[key]), key
        assert not torch.equal(a.state_dict()[key], c.state_dict()[key]), key
    # the encoder body is the file's, not re-initialised
    assert torch.equal(a.state_dict()["blocks.0.attn.qkv.weight"], torch.load(files["released"])["model"]["blocks.0.attn.qkv.weight"])


def test_linear_probe_reads_a_frozen_encoder_through_its_pretraining_pooling(files):
    from cardio_core.training.modules import build_model
    from cardio_core.training.recipes import get_recipe
    probe, _ = build_model(get_recipe("demo_ecg", linear_probe=True), files["released"])
    assert probe.global_pool == "mean_norm" and probe.attention_pool is None
    tuned, _ = build_model(get_recipe("demo_ecg", linear_probe=True), files["finetuned"])
    assert tuned.global_pool == "attention"        # a trained pool is kept
