import json

import pytest

from jobs.spec import JobSpec, SpecError, apply_assignments


def finetune(**kw):
    base = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "weights": "signal_encoder_mmcl.pth",
            "recipe": "thesis", "epochs": 200, "checkpoint_every": 10}
    base.update(kw)
    return base


def test_valid_spec_round_trips_through_dict_and_json():
    spec = JobSpec.from_dict(finetune(overrides={"lr": 3e-6}, seed=7))
    again = JobSpec.from_json(spec.to_json())
    assert again == spec
    assert again.to_dict()["overrides"] == {"lr": 3e-6}


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs: must be an integer in 1..10000, got 0"),
    ("epochs", 10001, "epochs: must be an integer in 1..10000, got 10001"),
    ("epochs", True, "epochs: must be an integer in 1..10000"),
    ("epochs", "5", "epochs: must be an integer in 1..10000"),
    ("checkpoint_every", 201, "checkpoint_every: must be an integer in 1..200, got 201"),
    ("checkpoint_every", 0, "checkpoint_every: must be an integer in 1..200, got 0"),
    ("device", "tpu", "device: must be one of cpu, cuda, auto, got 'tpu'"),
    ("modality", "mri", "modality: must be one of ecg, cmr"),
    ("dataset", "acdc", "dataset: must be one of chapman, ptbxl, got 'acdc'"),
    ("seed", -1, "seed: must be an integer in 0..4294967295"),
    ("weights", "../../etc/passwd", "weights: must be a weights id or a file name"),
    ("weights", "/abs/file.pth", "weights: must be a weights id or a file name"),
    ("weights", "..", "weights: must be"),
    ("recipe", "a b", "recipe: must be a recipe preset name"),
    ("overrides", {"lr": float("nan")}, "overrides: must hold only JSON values"),
    ("overrides", [1], "overrides: must be a table"),
    ("folds", [0], "folds: only CMR"),
])
def test_invalid_values_name_the_field_and_the_allowed_range(field, value, message):
    with pytest.raises(SpecError) as info:
        JobSpec.from_dict(finetune(**{field: value}))
    assert message in str(info.value)
    assert info.value.field == field


def test_kind_modality_and_required_fields():
    with pytest.raises(SpecError, match="kind: must be one of finetune, finetune_phenotypes, pretrain, pretrain_mmcl, embed"):
        JobSpec.from_dict({"kind": "mine_bitcoin"})
    with pytest.raises(SpecError, match="modality: is required for a finetune job"):
        JobSpec.from_dict({"kind": "finetune", "dataset": "chapman", "epochs": 1})
    with pytest.raises(SpecError, match="epochs: is required"):
        JobSpec.from_dict(finetune(epochs=None, checkpoint_every=None))
    with pytest.raises(SpecError, match="unknown field"):
        JobSpec.from_dict(finetune(epoch=3))
    # Kinds that are not training need no model fields.
    assert JobSpec.from_dict({"kind": "sleep", "params": {"seconds": 1}}).params == {"seconds": 1}


def test_cmr_folds_and_checkpoint_default():
    spec = JobSpec.from_dict({"kind": "finetune", "modality": "cmr", "dataset": "acdc", "epochs": 150,
                              "folds": [4, 0, 2]})
    assert spec.folds == [0, 2, 4]
    assert spec.checkpoint_every == 10
    assert JobSpec.from_dict(finetune(epochs=3, checkpoint_every=None)).checkpoint_every == 3
    with pytest.raises(SpecError, match=r"folds: must be an integer in 0..4, got 5"):
        JobSpec.from_dict({"kind": "finetune", "modality": "cmr", "dataset": "acdc", "epochs": 1, "folds": [5]})
    with pytest.raises(SpecError, match="folds: must not repeat"):
        JobSpec.from_dict({"kind": "finetune", "modality": "cmr", "dataset": "acdc", "epochs": 1, "folds": [1, 1]})


def test_from_file_json_and_toml(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(finetune()))
    (tmp_path / "b.toml").write_text(
        'kind = "finetune"\nmodality = "cmr"\ndataset = "acdc"\nepochs = 150\nfolds = [0, 1]\n'
        '[overrides]\nlr = 0.003\n')
    assert JobSpec.from_file(tmp_path / "a.json").epochs == 200
    toml_spec = JobSpec.from_file(tmp_path / "b.toml")
    assert toml_spec.folds == [0, 1] and toml_spec.overrides == {"lr": 0.003}


def test_from_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "finetune"\nmodality = "ecg"\ndataset = "chapman"\nepochs = 0\n')
    with pytest.raises(SpecError) as info:
        JobSpec.from_file(bad)
    assert str(info.value) == f"{bad}: epochs: must be an integer in 1..10000, got 0"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SpecError, match=f"{broken}: spec: not valid JSON"):
        JobSpec.from_file(broken)
    with pytest.raises(SpecError, match="must be a .json or .toml file"):
        JobSpec.from_file(tmp_path / "x.yaml")
    with pytest.raises(SpecError, match="cannot read the file"):
        JobSpec.from_file(tmp_path / "missing.json")


def test_command_line_assignments():
    data = apply_assignments({"kind": "sleep"}, ["params.seconds=0.5", "params.tag=abc", "epochs=3",
                                                 "overrides.lr=1e-3"])
    assert data == {"kind": "sleep", "params": {"seconds": 0.5, "tag": "abc"}, "epochs": 3,
                    "overrides": {"lr": 0.001}}
    with pytest.raises(SpecError, match="--set: expected key=value"):
        apply_assignments({}, ["epochs"])
    with pytest.raises(SpecError, match="only FIELD, params.KEY or overrides.KEY"):
        apply_assignments({}, ["a.b.c=1"])
