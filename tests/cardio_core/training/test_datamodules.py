import numpy as np
import pytest
import torch

from cardio_core.training.datamodules import AcdcFoldDataModule, ChapmanDataModule, CmrDataset, EcgDataset


def ecg_arrays(n=6, t=5000):
    # each sample's value = its time index, so a crop's first value is its start
    return np.broadcast_to(np.arange(t, dtype=np.float32), (n, 12, t)).copy()


class CountingAugment:
    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x + 1000.0


def test_eval_dataset_crops_first_samples_without_augmentation():
    ds = EcgDataset(ecg_arrays(), np.zeros((6, 20)), train=False)
    x, y = ds[0]
    assert x.shape == (1, 12, 2500) and x.dtype == torch.float32 and y.shape == (20,)
    assert torch.equal(x[0, 0], torch.arange(2500, dtype=torch.float32))
    assert torch.equal(ds[0][0], ds[0][0])
    assert ds.augment is None
    with pytest.raises(ValueError, match="non-training"):
        EcgDataset(ecg_arrays(), np.zeros((6, 20)), train=False, augment=CountingAugment())


def test_train_dataset_random_crop_and_default_augmentation():
    torch.manual_seed(0)
    ds = EcgDataset(ecg_arrays(), np.zeros((6, 20)), train=True, augment=False)
    starts = {int(ds[0][0][0, 0, 0]) for _ in range(30)}
    assert len(starts) > 20 and min(starts) >= 0 and max(starts) <= 2500
    x = ds[0][0][0, 0]
    assert torch.equal(x - x[0], torch.arange(2500, dtype=torch.float32))   # contiguous window
    from cardio_core.training.augment import EcgTrainAugment
    assert isinstance(EcgDataset(ecg_arrays(), np.zeros((6, 20)), train=True).augment, EcgTrainAugment)


def test_bad_inputs():
    with pytest.raises(ValueError, match="6 records but targets has 5"):
        EcgDataset(ecg_arrays(), np.zeros((5, 20)), train=True)
    with pytest.raises(ValueError, match="record 0"):
        EcgDataset(ecg_arrays(t=2000), np.zeros((6, 20)), train=False)[0]
    with pytest.raises(ValueError, match="train must be True or False"):
        EcgDataset(ecg_arrays(), np.zeros((6, 20)), train="train")


def test_chapman_datamodule_only_train_split_is_augmented():
    aug = CountingAugment()
    dm = ChapmanDataModule((ecg_arrays(), np.zeros((6, 20))), (ecg_arrays(4), np.ones((4, 20))),
                           (ecg_arrays(2), np.ones((2, 20))), batch_size=4, augment=aug)
    assert dm.train_dataset.train and not dm.val_dataset.train and not dm.test_dataset.train
    xb, _ = next(iter(dm.train_dataloader()))
    assert aug.calls == 4 and xb.shape == (4, 1, 12, 2500) and (xb >= 1000).all()
    xv, yv = next(iter(dm.val_dataloader()))
    assert aug.calls == 4 and xv[0, 0, 0, 0] == 0
    assert len(list(dm.test_dataloader())) == 1


def test_acdc_cv_training_folds_are_augmented():
    """method.md §7.4: every CV training fold is augmented, whatever it is called."""
    rng = np.random.default_rng(0)
    images = rng.random((10, 3, 32, 32), dtype=np.float32)
    labels = np.arange(10) % 5
    folds = np.arange(10) % 5
    for k in range(5):
        aug = CountingAugment()
        dm = AcdcFoldDataModule(images, labels, folds, k, batch_size=8, augment=aug)
        assert dm.train_dataset.train is True and dm.val_dataset.train is False
        assert set(dm.val_index) == {k, k + 5} and len(dm.train_index) == 8
        xb, yb = next(iter(dm.train_dataloader()))
        assert aug.calls == 8 and (xb >= 1000).all()
        xv, _ = next(iter(dm.val_dataloader()))
        assert aug.calls == 8 and torch.equal(xv[0], torch.from_numpy(images[k]))
    # default: the CMR augmentation is on for training folds
    from cardio_core.training.augment import CmrTrainAugment
    dm = AcdcFoldDataModule(images, labels, folds, 0)
    assert isinstance(dm.train_dataset.augment, CmrTrainAugment) and dm.val_dataset.augment is None
    with pytest.raises(ValueError, match="fold 7 has no records"):
        AcdcFoldDataModule(images, labels, folds, 7)


def test_cmr_dataset_labels_are_class_indices():
    with pytest.raises(ValueError, match="integer class index"):
        CmrDataset(np.zeros((2, 3, 8, 8)), np.array([0.5, 1.0]), train=False)
    x, y = CmrDataset(np.zeros((2, 3, 8, 8)), np.array([0, 4]), train=False)[1]
    assert x.shape == (3, 8, 8) and y.dtype == torch.int64 and int(y) == 4
