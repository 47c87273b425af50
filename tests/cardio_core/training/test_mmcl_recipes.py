"""MMCL pre-training recipes: the presets carry the paper's values, overrides are validated."""
import numpy as np
import pytest

from cardio_core.training.mmcl_recipes import (MMCL_PRESETS, get_mmcl_recipe, list_mmcl_recipes,
                                               mmcl_recipe_from_dict)
from cardio_core.vocabulary import MMCL_RECIPES


def test_presets_are_the_vocabulary_and_carry_the_paper_values():
    assert tuple(list_mmcl_recipes()) == MMCL_RECIPES == ("mmcl", "demo_mmcl")
    r = get_mmcl_recipe("mmcl")
    assert (r.batch_size, r.max_epochs, r.weight_decay, r.warmup_fraction, r.temperature, r.lambda_) == \
        (256, 300, 1e-4, 0.1, 0.1, 0.75)
    assert r.lr in (3e-5, 1e-4, 3e-4, 1e-3)                      # one of the paper's swept base lrs
    assert (r.hidden_dim, r.out_dim, r.cmr_size, r.crop_length, r.checkpoint_every) == (512, 128, 210, 2500, 10)
    assert (r.phase_noise, r.jitter_sigma, r.rescale_sigma) == (0.1, 0.25, 0.5)
    assert (r.flip_p, r.rotation_p, r.rotation_degrees, r.brightness, r.contrast, r.saturation, r.crop_scale_min) == \
        (0.5, 0.5, 45.0, 0.5, 0.5, 0.25, 0.6)
    assert r.warmup_epochs == pytest.approx(30) and r.monitor == "val/top1"
    demo = get_mmcl_recipe("demo_mmcl")
    assert demo.batch_size <= 64 and demo.max_epochs <= 10 and demo.cmr_size < 210 and demo.checkpoint_every <= demo.max_epochs


def test_module_and_datamodule_kwargs():
    r = get_mmcl_recipe("mmcl", max_epochs=20)
    kw = r.module_kwargs()
    assert kw["warmup_epochs"] == pytest.approx(2.0) and kw["lambda_"] == 0.75 and kw["val_batch_size"] == 256
    dm = r.datamodule_kwargs()
    assert dm["cmr_augment"].saturation == 0.25 and dm["ecg_augment"].crop_length == 2500
    off = get_mmcl_recipe("mmcl", augment=False).datamodule_kwargs()
    assert off["ecg_augment"] is False and off["cmr_augment"] is False


def test_train_subset_is_seeded():
    r = get_mmcl_recipe("mmcl", batch_size=32, train_subset=100, seed=3)
    a, b = r.train_positions(700), get_mmcl_recipe("mmcl", batch_size=32, train_subset=100, seed=3).train_positions(700)
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, r.replace(seed=4).train_positions(700))
    assert np.array_equal(get_mmcl_recipe("mmcl").train_positions(5), np.arange(5))


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, r"lr must be in \(0.0, 1.0\]"),
    ("temperature", -0.1, "temperature must be in"),
    ("lambda_", 1.5, r"lambda_ must be in \[0.0, 1.0\]"),
    ("batch_size", 1, "batch_size must be in"),
    ("batch_size", 8.5, "batch_size must be an integer"),
    ("warmup_fraction", 1.0, r"warmup_fraction must be in \[0.0, 1.0\)"),
    ("crop_length", 2550, "multiple of the patch size"),
    ("cmr_size", 16, "cmr_size must be in"),
    ("augment", 1, "augment must be true or false"),
    ("train_subset", 10, "at least batch_size"),
    ("saturation", 2.0, "saturation must be in"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        get_mmcl_recipe("mmcl", **{field: value})


def test_unknown_names_and_round_trip():
    with pytest.raises(ValueError, match="unknown MMCL recipe 'simclr'"):
        get_mmcl_recipe("simclr")
    with pytest.raises(ValueError, match="unknown MMCL recipe field.*tau"):
        get_mmcl_recipe("mmcl", tau=0.2)
    r = get_mmcl_recipe("demo_mmcl", seed=7)
    assert mmcl_recipe_from_dict(r.to_dict()) == r
    assert set(MMCL_PRESETS) == set(MMCL_RECIPES)
