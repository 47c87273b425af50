"""Fine-tuning recipes: every hyper-parameter of method.md §4 in one validated dataclass, with presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cardio_core.vocabulary import MODALITIES, RECIPES


@dataclass(frozen=True)
class Recipe:
    """All hyper-parameters of one fine-tuning run. Build with get_recipe(name, **overrides)."""
    modality: str
    # optimisation
    lr: float
    weight_decay: float
    layer_decay: float = 1.0            # 1.0 = no layer-wise decay
    drop_path: float = 0.0
    batch_size: int = 32
    max_epochs: int = 100
    warmup_epochs: float = 10.0
    checkpoint_every: int = 10          # epochs between saved checkpoints
    # epochs between validations; 0 = at the checkpoint epochs only (a short CPU run spends a large share of
    # its time validating every epoch; the checkpoints still carry their epoch's validation metrics)
    validate_every: int = 1
    # early stopping: validations in a row without a better monitor value before training stops (0 = never);
    # the run's best checkpoint is chosen on the same monitor either way
    patience: int = 0
    # training regime
    linear_probe: bool = False          # freeze the encoder, train only the head
    random_init: bool = False           # ignore pre-trained weights: randomly initialised encoder
    augment: bool = True
    # re-estimate BatchNorm statistics on the unaugmented training images before each validation and
    # checkpoint (training/callbacks.PreciseBatchNorm; CMR only, not with linear_probe): short runs otherwise
    # validate with running averages that lag the weights
    precise_bn: bool = True
    seed: int = 0
    # ECG input and augmentation (method.md §2, §4)
    crop_length: int = 2500
    phase_noise: float = 0.075
    ft_p: float = 0.5
    jitter_sigma: float = 0.2
    jitter_scale: float = 0.6
    rescale_sigma: float = 0.5
    # CMR input: the side the ResNet sees (0 = the encoder's own: the size it was pre-trained at, 210 for the
    # released files and random weights); images are preprocessed at 210 and resized inside the model
    input_size: int = 0
    # CMR augmentation
    cmr_aug_p: float = 0.95
    rotation_degrees: float = 45.0
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    crop_scale_min: float = 0.6
    # evaluation
    threshold: float = 0.5
    description: str = field(default="", compare=False)

    @property
    def monitor(self) -> str:
        """The validation metric used for model selection (a name the modules log)."""
        from cardio_core.training.modules import ECG_MONITOR, CMR_MONITOR
        return ECG_MONITOR if self.modality == "ecg" else CMR_MONITOR

    @property
    def validation_interval(self) -> int:
        """Epochs between validations as the Trainer takes them (validate_every 0: every checkpoint_every)."""
        return self.validate_every or self.checkpoint_every

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **overrides) -> "Recipe":
        return validate_recipe(dataclasses.replace(self, **_check_fields(overrides)))

    def ecg_augment(self):
        from cardio_core.training.augment import EcgTrainAugment
        return EcgTrainAugment(self.phase_noise, self.ft_p, self.jitter_sigma, self.jitter_scale, self.rescale_sigma)

    def cmr_augment(self, size: int = 210):
        from cardio_core.training.augment import CmrTrainAugment
        return CmrTrainAugment(p=self.cmr_aug_p, size=size, degrees=self.rotation_degrees, brightness=self.brightness,
                               contrast=self.contrast, saturation=self.saturation, scale=(self.crop_scale_min, 1.0))


# field -> (low, high, low_inclusive, high_inclusive)
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, 1.0, False, True),
    "weight_decay": (0.0, 10.0, True, True),
    "layer_decay": (0.0, 1.0, False, True),
    "drop_path": (0.0, 1.0, True, False),
    "batch_size": (1, 4096, True, True),
    "max_epochs": (1, 10000, True, True),
    "warmup_epochs": (0.0, 10000, True, True),
    "checkpoint_every": (1, 10000, True, True),
    "validate_every": (0, 10000, True, True),
    "patience": (0, 10000, True, True),
    "seed": (0, 2**32 - 1, True, True),
    "crop_length": (100, 5000, True, True),
    "phase_noise": (0.0, 1.0, True, True),
    "ft_p": (0.0, 1.0, True, True),
    "jitter_sigma": (0.0, 5.0, True, True),
    "jitter_scale": (0.0, 5.0, True, True),
    "rescale_sigma": (0.0, 5.0, True, True),
    "cmr_aug_p": (0.0, 1.0, True, True),
    "rotation_degrees": (0.0, 180.0, True, True),
    "brightness": (0.0, 1.0, True, True),
    "contrast": (0.0, 1.0, True, True),
    "saturation": (0.0, 1.0, True, True),
    "crop_scale_min": (0.0, 1.0, False, True),
    "input_size": (0, 1024, True, True),
    "threshold": (0.0, 1.0, False, False),
}
_INT_FIELDS = {"batch_size", "max_epochs", "checkpoint_every", "validate_every", "patience", "seed", "crop_length",
               "input_size"}
_BOOL_FIELDS = {"linear_probe", "random_init", "augment", "precise_bn"}


def _range_text(low, high, low_inc, high_inc) -> str:
    return f"{'[' if low_inc else '('}{low}, {high}{']' if high_inc else ')'}"


def _check_fields(overrides: dict) -> dict:
    names = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown recipe field(s) {', '.join(unknown)}; fields are {', '.join(sorted(names))}")
    return overrides


def validate_recipe(recipe: Recipe) -> Recipe:
    """Raise ValueError naming the field and its allowed range for any bad value."""
    if recipe.modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {recipe.modality!r}")
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(recipe, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(recipe, name)!r}")
    for name, (low, high, low_inc, high_inc) in RANGES.items():
        value = getattr(recipe, name)
        kind = int if name in _INT_FIELDS else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "an integer" if name in _INT_FIELDS else "a number"
            raise ValueError(f"{name} must be {what} in {_range_text(low, high, low_inc, high_inc)}, got {value!r}")
        ok = (value >= low if low_inc else value > low) and (value <= high if high_inc else value < high)
        if not ok:
            raise ValueError(f"{name} must be in {_range_text(low, high, low_inc, high_inc)}, got {value!r}")
    if recipe.warmup_epochs > recipe.max_epochs:
        raise ValueError(f"warmup_epochs must be in [0, max_epochs={recipe.max_epochs}], got {recipe.warmup_epochs}")
    if 0 < recipe.input_size < 32:
        raise ValueError(f"input_size must be 0 (the encoder's own) or 32..1024 pixels, got {recipe.input_size}")
    if recipe.crop_length % 100:
        raise ValueError(f"crop_length must be a multiple of the patch size 100 in [100, 5000], got {recipe.crop_length}")
    return recipe


PRESETS: dict[str, Recipe] = {
    "thesis_ecg": Recipe(
        modality="ecg", lr=3e-6, weight_decay=0.05, layer_decay=0.75, drop_path=0.1, batch_size=64,
        max_epochs=200, warmup_epochs=20, checkpoint_every=10,
        description="Thesis ECG fine-tuning on Chapman (method.md §4); the thesis picked epoch 50."),
    "mmcl_ecg": Recipe(
        modality="ecg", lr=6e-6, weight_decay=0.2, layer_decay=0.5, drop_path=0.2, batch_size=8,
        max_epochs=200, warmup_epochs=20, checkpoint_every=10,
        description="Original MMCL ECG fine-tuning recipe."),
    "thesis_cmr": Recipe(
        modality="cmr", lr=3e-3, weight_decay=1e-4, layer_decay=1.0, drop_path=0.0, batch_size=32,
        max_epochs=150, warmup_epochs=15, checkpoint_every=10,
        description="Thesis CMR fine-tuning on ACDC, per fold (method.md §4); the thesis picked epoch 80."),
    "demo_ecg": Recipe(
        modality="ecg", lr=3e-4, weight_decay=0.05, layer_decay=1.0, drop_path=0.0, batch_size=16,
        max_epochs=6, warmup_epochs=1, checkpoint_every=3, validate_every=0, augment=False,
        description="A quick demo on 2 CPU cores: few epochs, a large lr on every layer, small batches, no "
                    "augmentation or drop path. Measured on a 360-record demo set: rhythm silhouette "
                    "0.05 -> 0.13 in 6 epochs, where the thesis recipe's regularisation shows no effect yet."),
    "demo_cmr": Recipe(
        modality="cmr", lr=1e-3, weight_decay=1e-4, layer_decay=1.0, drop_path=0.0, batch_size=16,
        max_epochs=3, warmup_epochs=1, checkpoint_every=1, augment=False,
        description="A quick demo on 2 CPU cores: 3 epochs, short warm-up, no augmentation (it slows what 3 "
                    "epochs can learn). Measured on the demo ACDC set from random weights at 96 px, 5 folds: "
                    "mean accuracy 0.91 with BatchNorm statistics re-estimated (precise_bn), 0.20 (one class "
                    "everywhere) without."),
}


if tuple(PRESETS) != RECIPES:  # the vocabulary lists the presets for pages and specs; keep them in step
    raise RuntimeError(f"recipe presets {tuple(PRESETS)} differ from cardio_core.vocabulary.RECIPES {RECIPES}")


def list_recipes() -> list[str]:
    return list(PRESETS)


def get_recipe(name: str, **overrides) -> Recipe:
    """A preset with some fields replaced; every value validated."""
    if name not in PRESETS:
        raise ValueError(f"unknown recipe {name!r}; presets are {', '.join(PRESETS)}")
    if "modality" in overrides and overrides["modality"] != PRESETS[name].modality:
        raise ValueError(f"modality of preset {name!r} is {PRESETS[name].modality!r} and cannot be changed")
    return PRESETS[name].replace(**overrides)


def recipe_from_dict(values: dict) -> Recipe:
    """Rebuild a stored recipe (e.g. from a job's JSON spec), validated."""
    _check_fields(values)
    try:
        return validate_recipe(Recipe(**values))
    except TypeError as exc:   # a required field is missing
        raise ValueError(f"incomplete recipe: {exc}") from None
