import pytest

from cardio_core.training.recipes import PRESETS, get_recipe, list_recipes, recipe_from_dict, validate_recipe


def test_presets_are_valid_and_carry_method_values():
    assert set(list_recipes()) == {"thesis_ecg", "mmcl_ecg", "thesis_cmr", "demo_ecg", "demo_cmr"}
    for recipe in PRESETS.values():
        validate_recipe(recipe)
    ecg = get_recipe("thesis_ecg")
    assert (ecg.lr, ecg.weight_decay, ecg.layer_decay, ecg.drop_path) == (3e-6, 0.05, 0.75, 0.1)
    assert (ecg.warmup_epochs, ecg.max_epochs, ecg.checkpoint_every) == (20, 200, 10)
    assert (ecg.phase_noise, ecg.ft_p, ecg.jitter_sigma, ecg.jitter_scale, ecg.rescale_sigma) == (0.075, 0.5, 0.2, 0.6, 0.5)
    assert ecg.crop_length == 2500 and ecg.monitor == "val/macro_f1"
    mmcl = get_recipe("mmcl_ecg")
    assert (mmcl.batch_size, mmcl.lr, mmcl.layer_decay, mmcl.drop_path, mmcl.weight_decay) == (8, 6e-6, 0.5, 0.2, 0.2)
    cmr = get_recipe("thesis_cmr")
    assert (cmr.lr, cmr.weight_decay, cmr.warmup_epochs, cmr.max_epochs, cmr.cmr_aug_p) == (3e-3, 1e-4, 15, 150, 0.95)
    assert cmr.monitor == "val/accuracy"
    demo = get_recipe("demo_ecg")
    assert demo.max_epochs <= 10 and demo.lr >= 99 * ecg.lr and demo.warmup_epochs <= 2


def test_overrides_and_roundtrip():
    r = get_recipe("thesis_ecg", lr=1e-5, linear_probe=True)
    assert r.lr == 1e-5 and r.linear_probe and get_recipe("thesis_ecg").lr == 3e-6
    assert recipe_from_dict(r.to_dict()) == r


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, r"lr must be in \(0.0, 1.0\]"),
    ("lr", 5.0, r"lr must be in"),
    ("layer_decay", 1.5, r"layer_decay must be in \(0.0, 1.0\]"),
    ("drop_path", 1.0, r"drop_path must be in \[0.0, 1.0\)"),
    ("batch_size", 0, r"batch_size must be in \[1, 4096\]"),
    ("batch_size", 8.5, r"batch_size must be an integer"),
    ("warmup_epochs", 500, r"warmup_epochs must be in \[0, max_epochs=200\]"),
    ("crop_length", 2550, r"crop_length must be a multiple"),
    ("linear_probe", "yes", r"linear_probe must be true or false"),
    ("ft_p", -0.1, r"ft_p must be in \[0.0, 1.0\]"),
])
def test_bad_values_name_the_field_and_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        get_recipe("thesis_ecg", **{field: value})


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown recipe field.*learning_rate"):
        get_recipe("thesis_ecg", learning_rate=1e-3)
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="modality"):
        get_recipe("thesis_ecg", modality="cmr")
