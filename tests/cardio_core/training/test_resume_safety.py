"""Resume loads weights-only: a planted pickle in runs/ is refused, a real resume state continues
(issue 11, point 5)."""
import os
import pickle
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from cardio_core.errors import CardioError
from cardio_core.models import EcgViT
from cardio_core.training.callbacks import ResumeState, check_resume_state, fit_resuming
from cardio_core.training.datamodules import ChapmanDataModule
from cardio_core.training.modules import EcgFinetuneModule, compute_pos_weight

REPO = Path(__file__).resolve().parents[3]
TINY = dict(signal_length=500, embed_dim=32, depth=1, num_heads=4)


def trainer(max_epochs, **kw):
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kw)


def data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12, 1000)).astype(np.float32), (rng.random((n, 20)) < 0.3).astype(np.float32)


def module(dm):
    return EcgFinetuneModule(EcgViT(**TINY), pos_weight=compute_pos_weight(dm.train_targets), lr=1e-3,
                             layer_decay=0.75, warmup_epochs=1, max_epochs=2)


class Payload:
    """Unpickling this runs a command: what an attacker would plant as resume.ckpt."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "resume.ckpt"
    torch.save({"state_dict": {}, "epoch": 1, "loops": Payload(marker)}, evil)
    with pytest.raises(CardioError, match="refused as a resume state"):
        check_resume_state(evil)
    dm = ChapmanDataModule(data(8, 0), data(4, 1), batch_size=4, crop_length=500)
    with pytest.raises(CardioError, match=str(evil)):
        fit_resuming(trainer(1), module(dm), datamodule=dm, resume_from=evil)
    assert not marker.exists()
    # plain pickle too (not a torch zip file)
    evil.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CardioError):
        check_resume_state(evil)
    assert not marker.exists()


def test_a_real_resume_state_loads_weights_only_and_continues(tmp_path):
    torch.manual_seed(0)
    dm = ChapmanDataModule(data(8, 0), data(4, 1), batch_size=4, crop_length=500)
    first = trainer(1, callbacks=[ResumeState(tmp_path / "resume.ckpt", 1)])
    first.fit(module(dm), datamodule=dm)
    assert check_resume_state(tmp_path / "resume.ckpt") == tmp_path / "resume.ckpt"
    second = trainer(2)
    fit_resuming(second, module(dm), datamodule=dm, resume_from=tmp_path / "resume.ckpt")
    assert second.current_epoch == 2 and second.global_step == 4  # continued: 2 steps restored + 2 new


def test_no_resume_loads_with_weights_only_false():
    offenders = [p for p in (REPO / "cardio_core").rglob("*.py") if "weights_only=False" in p.read_text()]
    offenders += [p for p in (REPO / "jobs").rglob("*.py") if "weights_only=False" in p.read_text()]
    assert offenders == []
