"""MMCL pre-training recipes: every option of multimodal contrastive pre-training (method.md §8) in one
validated dataclass, with presets. The fine-tuning recipes (recipes.py) are a different object: they describe
one encoder on one labelled task, these two encoders on unlabelled pairs.

Presets:
  mmcl       the paper's values: batch 256, 300 epochs, warm-up 10 %, AdamW weight decay 1e-4, tau 0.1,
             lambda 0.75, projectors 512 -> 128, CMR 210 px, ECG crop 2,500 samples, a checkpoint every 10
             epochs. Base lr 1e-4: the paper swept {3e-5, 1e-4, 3e-4, 1e-3} without saying which it kept; the
             published run script's multimodal ECG-imaging command (lambda_0=0.75, embedding_dim=512,
             projection_dim=128) uses lr=1e-4.
  demo_mmcl  sized for 2 CPU cores (a few minutes on the 500 demo pairs): see its description.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cardio_core.vocabulary import MMCL_RECIPES


@dataclass(frozen=True)
class MmclRecipe:
    """All options of one MMCL pre-training run. Build with get_mmcl_recipe(name, **overrides)."""
    # optimisation
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 256                # global batch: the negatives of one step
    max_epochs: int = 300
    warmup_fraction: float = 0.1         # linear warm-up over this share of the epochs, then half-cosine
    checkpoint_every: int = 10
    seed: int = 0
    # contrastive objective
    temperature: float = 0.1
    lambda_: float = 0.75                # weight of the CMR-anchored term; 1 - lambda_ for the ECG-anchored one
    hidden_dim: int = 512
    out_dim: int = 128
    # inputs
    crop_length: int = 2500
    cmr_size: int = 210
    train_subset: int = 0                # 0: every training pair; n > 0: the first n pairs of a seeded shuffle
    # re-estimate the CMR encoder's BatchNorm statistics on the unaugmented training images before each
    # validation and checkpoint (training/callbacks.PreciseBatchNorm)
    precise_bn: bool = True
    # augmentation (train only)
    augment: bool = True
    phase_noise: float = 0.1
    jitter_sigma: float = 0.25
    jitter_scale: float = 0.6
    rescale_sigma: float = 0.5
    flip_p: float = 0.5
    rotation_p: float = 0.5
    rotation_degrees: float = 45.0
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.25
    crop_scale_min: float = 0.6
    description: str = field(default="", compare=False)

    @property
    def warmup_epochs(self) -> float:
        return self.warmup_fraction * self.max_epochs

    @property
    def monitor(self) -> str:
        """The validation metric to pick a checkpoint by (a name MmclPretrainModule logs)."""
        from cardio_core.training.mmcl import MMCL_MONITOR
        return MMCL_MONITOR

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **overrides) -> "MmclRecipe":
        return validate_mmcl_recipe(dataclasses.replace(self, **_check_fields(overrides)))

    def ecg_augment(self):
        """The training-view ECG augmentation, or False (a random crop only) when augment is off."""
        if not self.augment:
            return False
        from cardio_core.training.augment import EcgPretrainAugment
        return EcgPretrainAugment(crop_length=self.crop_length, phase_noise=self.phase_noise,
                                  jitter_sigma=self.jitter_sigma, jitter_scale=self.jitter_scale,
                                  rescale_sigma=self.rescale_sigma)

    def cmr_augment(self):
        """The training-view CMR augmentation, or False (a plain resize to cmr_size) when augment is off."""
        if not self.augment:
            return False
        from cardio_core.training.augment import CmrPretrainAugment
        return CmrPretrainAugment(size=self.cmr_size, flip_p=self.flip_p, rotation_p=self.rotation_p,
                                  degrees=self.rotation_degrees, brightness=self.brightness, contrast=self.contrast,
                                  saturation=self.saturation, scale=(self.crop_scale_min, 1.0))

    def module_kwargs(self) -> dict:
        """Keyword arguments of MmclPretrainModule (besides the two encoders)."""
        return {"hidden_dim": self.hidden_dim, "out_dim": self.out_dim, "temperature": self.temperature,
                "lambda_": self.lambda_, "lr": self.lr, "weight_decay": self.weight_decay,
                "warmup_epochs": self.warmup_epochs, "max_epochs": self.max_epochs,
                "val_batch_size": self.batch_size, "seed": self.seed}

    def datamodule_kwargs(self) -> dict:
        """Keyword arguments of PairedDataModule (besides the arrays and the split)."""
        return {"batch_size": self.batch_size, "crop_length": self.crop_length, "cmr_size": self.cmr_size,
                "seed": self.seed, "ecg_augment": self.ecg_augment(), "cmr_augment": self.cmr_augment()}

    def train_positions(self, n_train: int):
        """Positions 0..n_train-1 of the training pairs to use: all of them when train_subset is 0, else
        train_subset of them drawn by a permutation seeded with `seed` (returned in ascending order)."""
        import numpy as np
        if self.train_subset == 0 or self.train_subset >= n_train:
            return np.arange(n_train)
        order = np.random.default_rng(self.seed).permutation(n_train)
        return np.sort(order[:self.train_subset])


# field -> (low, high, low_inclusive, high_inclusive)
MMCL_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, 1.0, False, True),
    "weight_decay": (0.0, 10.0, True, True),
    "batch_size": (2, 65536, True, True),
    "max_epochs": (1, 10000, True, True),
    "warmup_fraction": (0.0, 1.0, True, False),
    "checkpoint_every": (1, 10000, True, True),
    "seed": (0, 2**32 - 1, True, True),
    "temperature": (0.0, 10.0, False, True),
    "lambda_": (0.0, 1.0, True, True),
    "hidden_dim": (1, 16384, True, True),
    "out_dim": (1, 16384, True, True),
    "crop_length": (100, 5000, True, True),
    "cmr_size": (32, 512, True, True),
    "train_subset": (0, 10**9, True, True),
    "phase_noise": (0.0, 1.0, True, True),
    "jitter_sigma": (0.0, 5.0, True, True),
    "jitter_scale": (0.0, 5.0, True, True),
    "rescale_sigma": (0.0, 5.0, True, True),
    "flip_p": (0.0, 1.0, True, True),
    "rotation_p": (0.0, 1.0, True, True),
    "rotation_degrees": (0.0, 180.0, True, True),
    "brightness": (0.0, 1.0, True, True),
    "contrast": (0.0, 1.0, True, True),
    "saturation": (0.0, 1.0, True, True),
    "crop_scale_min": (0.0, 1.0, False, True),
}
_INT_FIELDS = {"batch_size", "max_epochs", "checkpoint_every", "seed", "hidden_dim", "out_dim", "crop_length",
               "cmr_size", "train_subset"}
_BOOL_FIELDS = {"augment", "precise_bn"}


def _range_text(low, high, low_inc, high_inc) -> str:
    return f"{'[' if low_inc else '('}{low}, {high}{']' if high_inc else ')'}"


def _check_fields(overrides: dict) -> dict:
    names = {f.name for f in dataclasses.fields(MmclRecipe)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown MMCL recipe field(s) {', '.join(unknown)}; fields are {', '.join(sorted(names))}")
    return overrides


def validate_mmcl_recipe(recipe: MmclRecipe) -> MmclRecipe:
    """Raise ValueError naming the field and its allowed range for any bad value."""
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(recipe, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(recipe, name)!r}")
    for name, (low, high, low_inc, high_inc) in MMCL_RANGES.items():
        value = getattr(recipe, name)
        kind = int if name in _INT_FIELDS else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "an integer" if name in _INT_FIELDS else "a number"
            raise ValueError(f"{name} must be {what} in {_range_text(low, high, low_inc, high_inc)}, got {value!r}")
        ok = (value >= low if low_inc else value > low) and (value <= high if high_inc else value < high)
        if not ok:
            raise ValueError(f"{name} must be in {_range_text(low, high, low_inc, high_inc)}, got {value!r}")
    if recipe.crop_length % 100:
        raise ValueError(f"crop_length must be a multiple of the patch size 100 in [100, 5000], got {recipe.crop_length}")
    if 0 < recipe.train_subset < recipe.batch_size:
        raise ValueError(f"train_subset ({recipe.train_subset}) must be 0 (all pairs) or at least batch_size "
                         f"({recipe.batch_size}): a contrastive step needs a full batch")
    if not isinstance(recipe.description, str):
        raise ValueError("description must be a string")
    return recipe


MMCL_PRESETS: dict[str, MmclRecipe] = {
    "mmcl": MmclRecipe(
        description="The MMCL paper's contrastive stage (method.md §8): batch 256, 300 epochs, 10 % warm-up, "
                    "AdamW lr 1e-4 (the published multimodal run's value from the swept 3e-5 / 1e-4 / 3e-4 / 1e-3), "
                    "weight decay 1e-4, tau 0.1, lambda 0.75, projectors 512 -> 128, 210 px CMR, 2,500-sample ECG."),
    "demo_mmcl": MmclRecipe(
        # lr 3e-4 (in the paper's sweep): at the published 1e-4 the demo's ~60 steps did not leave the loss's
        # ln(batch) plateau; at 1e-3 a few steps on a small batch collapse both encoders onto one point.
        # No augmentation: like demo_ecg / demo_cmr, a few epochs learn faster without it.
        lr=3e-4, batch_size=32, max_epochs=6, warmup_fraction=0.1, checkpoint_every=2, cmr_size=64,
        augment=False,
        description="A quick demo on 2 CPU cores: every training pair, batch 32, 6 epochs at lr 3e-4, no "
                    "augmentation, the CMR resized to 64 px; about 5 minutes. Measured on the 350 demo training "
                    "pairs: validation loss 3.31 -> 2.82 (ln 32 = 3.47 is chance), ECG->CMR top-1 0.04 on 75 "
                    "validation pairs (chance 0.013)."),
}


if tuple(MMCL_PRESETS) != MMCL_RECIPES:  # the vocabulary lists the presets for pages and specs; keep them in step
    raise RuntimeError(f"MMCL presets {tuple(MMCL_PRESETS)} differ from cardio_core.vocabulary.MMCL_RECIPES "
                       f"{MMCL_RECIPES}")


def list_mmcl_recipes() -> list[str]:
    return list(MMCL_PRESETS)


def get_mmcl_recipe(name: str, **overrides) -> MmclRecipe:
    """A preset with some fields replaced; every value validated (unknown field or value out of range: ValueError)."""
    if name not in MMCL_PRESETS:
        raise ValueError(f"unknown MMCL recipe {name!r}; presets are {', '.join(MMCL_PRESETS)}")
    return MMCL_PRESETS[name].replace(**overrides)


def mmcl_recipe_from_dict(values: dict) -> MmclRecipe:
    """Rebuild a stored recipe (e.g. from a job's JSON spec), validated."""
    _check_fields(values)
    return validate_mmcl_recipe(MmclRecipe(**values))
