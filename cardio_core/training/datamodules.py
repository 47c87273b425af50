"""Datasets and Lightning DataModules built from in-memory (or memory-mapped) arrays.

Whether a dataset is a training set is an explicit `train` boolean set by the caller,
never inferred from a split's name: with name-based rules, cross-validation training folds
went unaugmented (method.md §7.4). Random numbers come from torch so DataLoader workers
draw different crops and augmentations.
"""
from __future__ import annotations

from typing import Callable, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cardio_core.training.augment import CmrTrainAugment, EcgTrainAugment
from cardio_core.training.distributed import per_device_batch, world_size


def _resolve_augment(augment, train: bool, default: Callable) -> Callable | None:
    """None -> the default augmentation when training; False -> none; a callable -> itself."""
    if not train:
        if augment not in (None, False):
            raise ValueError("augment was given for a non-training dataset (train=False); evaluation is never augmented")
        return None
    if augment is None:
        return default()
    if augment is False:
        return None
    if not callable(augment):
        raise ValueError(f"augment must be a callable, None or False, got {type(augment).__name__}")
    return augment


class EcgDataset(Dataset):
    """(x (1, 12, crop_length) float32, y (n_classes,) float32) pairs.

    `arrays[i]` returns one preprocessed record (12, T) with T >= crop_length. train=True:
    a random crop and augmentation; train=False: samples 0..crop_length-1, no augmentation.
    """

    def __init__(self, arrays, targets, *, train: bool, crop_length: int = 2500, augment=None):
        if not isinstance(train, bool):
            raise ValueError(f"train must be True or False, got {train!r}")
        targets = np.asarray(targets, dtype=np.float32)
        if targets.ndim != 2:
            raise ValueError(f"targets must be (n_records, n_classes), got shape {targets.shape}")
        if len(arrays) != len(targets):
            raise ValueError(f"arrays has {len(arrays)} records but targets has {len(targets)} rows")
        if crop_length < 1:
            raise ValueError(f"crop_length must be >= 1, got {crop_length}")
        self.arrays, self.targets = arrays, targets
        self.train, self.crop_length = train, crop_length
        self.augment = _resolve_augment(augment, train, EcgTrainAugment)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        signal = np.asarray(self.arrays[i], dtype=np.float32)
        if signal.ndim != 2 or signal.shape[1] < self.crop_length:
            raise ValueError(f"record {i}: expected (leads, T >= {self.crop_length}), got shape {signal.shape}")
        start = 0
        if self.train:
            start = int(torch.randint(0, signal.shape[1] - self.crop_length + 1, ()).item())
        x = torch.from_numpy(np.ascontiguousarray(signal[:, start:start + self.crop_length]))
        if self.augment is not None:
            x = self.augment(x)
        return x.unsqueeze(0), torch.from_numpy(self.targets[i])


class CmrDataset(Dataset):
    """(x (3, H, W) float32, y int64 class index) pairs; train=True applies the CMR augmentation."""

    def __init__(self, images, labels, *, train: bool, augment=None):
        if not isinstance(train, bool):
            raise ValueError(f"train must be True or False, got {train!r}")
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer class index per record, got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"images has {len(images)} records but labels has {len(labels)}")
        self.images, self.labels, self.train = images, labels.astype(np.int64), train
        size = int(np.asarray(images[0]).shape[-1]) if len(images) else 210
        self.augment = _resolve_augment(augment, train, lambda: CmrTrainAugment(size=size))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = np.asarray(self.images[i], dtype=np.float32)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"record {i}: expected (3, H, W), got shape {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image))
        if self.augment is not None:
            x = self.augment(x)
        return x, torch.tensor(self.labels[i])


class _LoadersMixin:
    batch_size: int
    num_workers: int

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        # batch_size is the global batch: under DDP each of the W ranks loads 1/W of it
        ranks = world_size(getattr(self, "trainer", None))
        return DataLoader(dataset, batch_size=per_device_batch(self.batch_size, ranks), shuffle=shuffle,
                          num_workers=self.num_workers,
                          drop_last=False, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available())


class ChapmanDataModule(_LoadersMixin, L.LightningDataModule):
    """Train / validation / (optional) test splits, each given as (arrays, targets).

    The `train` split is built with train=True (random crop + augmentation); `val` and `test`
    with train=False (crop 0..crop_length-1, no augmentation).
    """

    def __init__(self, train: tuple, val: tuple, test: tuple | None = None, *, batch_size: int = 64,
                 num_workers: int = 0, crop_length: int = 2500, augment=None):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_dataset = EcgDataset(*train, train=True, crop_length=crop_length, augment=augment)
        self.val_dataset = EcgDataset(*val, train=False, crop_length=crop_length)
        self.test_dataset = EcgDataset(*test, train=False, crop_length=crop_length) if test is not None else None

    @property
    def train_targets(self) -> np.ndarray:
        return self.train_dataset.targets

    def train_dataloader(self):
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self):
        if self.test_dataset is None:
            raise ValueError("ChapmanDataModule was built without a test split")
        return self._loader(self.test_dataset, shuffle=False)


class AcdcFoldDataModule(_LoadersMixin, L.LightningDataModule):
    """One cross-validation fold: records whose fold == `fold` validate, all others train (augmented); with
    `train_keep` (a mask over all records) only the training records it marks train (a label-efficiency run)."""

    def __init__(self, images, labels, fold_of_record: Sequence[int], fold: int, *, batch_size: int = 32,
                 num_workers: int = 0, augment=None, train_keep=None):
        super().__init__()
        fold_of_record = np.asarray(fold_of_record)
        if len(fold_of_record) != len(images):
            raise ValueError(f"fold_of_record has {len(fold_of_record)} entries but images has {len(images)}")
        if fold not in set(fold_of_record.tolist()):
            raise ValueError(f"fold {fold} has no records; folds present: {sorted(set(fold_of_record.tolist()))}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.fold, self.batch_size, self.num_workers = fold, batch_size, num_workers
        labels = np.asarray(labels)
        keep = np.ones(len(fold_of_record), dtype=bool) if train_keep is None else np.asarray(train_keep, dtype=bool)
        if keep.shape != fold_of_record.shape:
            raise ValueError(f"train_keep has {keep.size} entries but images has {len(fold_of_record)}")
        self.train_index = np.flatnonzero((fold_of_record != fold) & keep)
        if len(self.train_index) == 0:
            raise ValueError(f"fold {fold} has no training records left")
        self.val_index = np.flatnonzero(fold_of_record == fold)
        images_np = images if isinstance(images, np.ndarray) else None
        take = (lambda idx: images_np[idx]) if images_np is not None else (lambda idx: [images[i] for i in idx])
        self.train_dataset = CmrDataset(take(self.train_index), labels[self.train_index], train=True, augment=augment)
        self.val_dataset = CmrDataset(take(self.val_index), labels[self.val_index], train=False)

    def train_dataloader(self):
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_dataset, shuffle=False)


class PretrainDataModule(_LoadersMixin, L.LightningDataModule):
    """Self-supervised pre-training data: every record of `arrays` as a random crop, no augmentation,
    no validation split (masked data modelling scores itself on the masked patches)."""

    def __init__(self, arrays, *, batch_size: int = 32, num_workers: int = 0, crop_length: int = 2500):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(arrays) < 1:
            raise ValueError("pre-training needs at least one record")
        self.batch_size, self.num_workers = batch_size, num_workers
        # targets are unused by the MDM module; zeros keep EcgDataset's (x, y) pairs
        self.train_dataset = EcgDataset(arrays, np.zeros((len(arrays), 1), np.float32), train=True,
                                        crop_length=crop_length, augment=False)

    def train_dataloader(self):
        # drop a ragged last batch when there is more than one batch (MDM's batch statistics)
        batch = per_device_batch(self.batch_size, world_size(getattr(self, "trainer", None)))
        return DataLoader(self.train_dataset, batch_size=batch, shuffle=True, num_workers=self.num_workers,
                          drop_last=len(self.train_dataset) > self.batch_size,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())


def _take(arrays, index):
    """Records `index` of a sequence-like `arrays` (numpy array, memory map, list, or any object with
    __getitem__ and __len__) without copying the whole sequence."""
    if index is None:
        return arrays
    index = np.asarray(index, dtype=np.int64)
    if index.ndim != 1:
        raise ValueError(f"indices must be a 1-D list of record positions, got shape {index.shape}")
    if len(index) and (index.min() < 0 or index.max() >= len(arrays)):
        raise ValueError(f"indices out of range for {len(arrays)} records")
    return _Subset(arrays, index)


class _Subset:
    def __init__(self, arrays, index: np.ndarray):
        self.arrays, self.index = arrays, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.arrays[int(self.index[i])]


class PairedDataset(Dataset):
    """(ecg (1, 12, crop_length) float32, cmr (3, cmr_size, cmr_size) float32) pairs of the same subject.

    `ecg_arrays[i]` is one preprocessed record (12, T >= crop_length), `cmr_arrays[i]` its subject's image
    (3, H, W) in [0, 1] (210 x 210 as preprocessed). train=True: the MMCL pre-training views (random crop and
    ECG augmentation, CMR flip / rotation / colour jitter / random resized crop to cmr_size); train=False:
    samples 0..crop_length-1 and the image resized to cmr_size, nothing random.

    A cmr_size other than the image's own (e.g. 96 for a CPU demo) resizes it bilinearly, antialiased; in
    training the random resized crop itself outputs cmr_size, so a view at crop scale 1 equals the
    validation image. Random numbers come from torch's generator of the process (seeded per DataLoader worker
    by torch), or from `generator` when one is given (tests).
    """

    def __init__(self, ecg_arrays, cmr_arrays, *, train: bool, crop_length: int = 2500, cmr_size: int = 210,
                 ecg_augment=None, cmr_augment=None, generator: torch.Generator | None = None):
        if not isinstance(train, bool):
            raise ValueError(f"train must be True or False, got {train!r}")
        if len(ecg_arrays) != len(cmr_arrays):
            raise ValueError(f"ecg has {len(ecg_arrays)} records but cmr has {len(cmr_arrays)}: pairs must align")
        if crop_length < 1 or cmr_size < 1:
            raise ValueError(f"crop_length and cmr_size must be >= 1, got {crop_length}, {cmr_size}")
        from cardio_core.training.augment import CmrPretrainAugment, EcgPretrainAugment
        self.ecg_arrays, self.cmr_arrays = ecg_arrays, cmr_arrays
        self.train, self.crop_length, self.cmr_size = train, crop_length, cmr_size
        self.ecg_augment = _resolve_augment(ecg_augment, train, lambda: EcgPretrainAugment(crop_length=crop_length))
        self.cmr_augment = _resolve_augment(cmr_augment, train, lambda: CmrPretrainAugment(size=cmr_size))
        self.generator = generator

    def __len__(self) -> int:
        return len(self.ecg_arrays)

    def __getitem__(self, i: int):
        signal = np.asarray(self.ecg_arrays[i], dtype=np.float32)
        if signal.ndim != 2 or signal.shape[1] < self.crop_length:
            raise ValueError(f"pair {i}: expected an ECG (leads, T >= {self.crop_length}), got shape {signal.shape}")
        image = np.asarray(self.cmr_arrays[i], dtype=np.float32)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"pair {i}: expected a CMR image (3, H, W), got shape {image.shape}")
        ecg = torch.from_numpy(np.ascontiguousarray(signal))
        cmr = torch.from_numpy(np.ascontiguousarray(image))
        if self.ecg_augment is not None:
            ecg = self.ecg_augment(ecg, generator=self.generator)
        elif self.train:   # augmentation off: still a random window
            start = int(torch.randint(0, ecg.shape[1] - self.crop_length + 1, (), generator=self.generator))
            ecg = ecg[:, start:start + self.crop_length]
        else:
            ecg = ecg[:, :self.crop_length]
        if ecg.shape[-1] != self.crop_length:
            raise ValueError(f"pair {i}: the ECG augmentation returned {ecg.shape[-1]} samples, not {self.crop_length}")
        if self.cmr_augment is not None:
            cmr = self.cmr_augment(cmr, generator=self.generator)
        elif cmr.shape[-2:] != (self.cmr_size, self.cmr_size):
            cmr = nn_resize(cmr, self.cmr_size)
        return ecg.contiguous().unsqueeze(0), cmr.contiguous()


def nn_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size), bilinear, antialiased (torchvision's resize)."""
    from torchvision.transforms.v2 import functional as F
    return F.resize(image, [size, size], antialias=True)


class PairedDataModule(L.LightningDataModule):
    """Paired ECG + CMR records for MMCL pre-training: a training and a validation split.

    Either one pair of sequences with `train_index` / `val_index` (positions into them), or separate
    sequences per split (`val_ecg` / `val_cmr`). `batch_size` is the global batch (under DDP each of the W
    ranks loads 1/W of it). The training loader shuffles (seeded by `seed`) and drops a ragged last batch
    (`drop_last=True`: every contrastive step sees a full set of negatives), unless the split is smaller than
    one batch; validation keeps every pair, in order, unaugmented.
    """

    def __init__(self, ecg_arrays, cmr_arrays, *, train_index=None, val_index=None, val_ecg=None, val_cmr=None,
                 batch_size: int = 256, crop_length: int = 2500, cmr_size: int = 210, seed: int = 0,
                 num_workers: int = 0, drop_last: bool = True, ecg_augment=None, cmr_augment=None):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if (val_ecg is None) != (val_cmr is None):
            raise ValueError("give both val_ecg and val_cmr, or neither")
        if val_ecg is not None and val_index is not None:
            raise ValueError("give either val_index (positions into ecg_arrays/cmr_arrays) or val_ecg/val_cmr, not both")
        if len(ecg_arrays) != len(cmr_arrays):
            raise ValueError(f"ecg has {len(ecg_arrays)} records but cmr has {len(cmr_arrays)}: pairs must align")
        self.batch_size, self.num_workers, self.seed, self.drop_last = batch_size, num_workers, int(seed), drop_last
        self.crop_length, self.cmr_size = crop_length, cmr_size
        train_ecg, train_cmr = _take(ecg_arrays, train_index), _take(cmr_arrays, train_index)
        if len(train_ecg) < 2:
            raise ValueError(f"contrastive pre-training needs at least 2 training pairs, got {len(train_ecg)}")
        self.train_dataset = PairedDataset(train_ecg, train_cmr, train=True, crop_length=crop_length,
                                           cmr_size=cmr_size, ecg_augment=ecg_augment, cmr_augment=cmr_augment)
        if val_ecg is None and val_index is not None:
            val_ecg, val_cmr = _take(ecg_arrays, val_index), _take(cmr_arrays, val_index)
        self.val_dataset = (PairedDataset(val_ecg, val_cmr, train=False, crop_length=crop_length, cmr_size=cmr_size)
                            if val_ecg is not None and len(val_ecg) > 0 else None)

    def _per_device_batch(self) -> int:
        return per_device_batch(self.batch_size, world_size(getattr(self, "trainer", None)))

    def train_dataloader(self):
        batch = self._per_device_batch()
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_dataset, batch_size=batch, shuffle=True, generator=generator,
                          num_workers=self.num_workers,
                          drop_last=self.drop_last and len(self.train_dataset) >= self.batch_size,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def val_dataloader(self):
        if self.val_dataset is None:
            return []
        return DataLoader(self.val_dataset, batch_size=self._per_device_batch(), shuffle=False,
                          num_workers=self.num_workers, drop_last=False, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available())
