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


# --- PairedDataModule (MMCL pre-training) -----------------------------------------------------------------------

from cardio_core.training.datamodules import PairedDataModule, PairedDataset  # noqa: E402


def _paired(n, t=1000, size=210, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12, t), dtype=np.float32), rng.random((n, 3, size, size), dtype=np.float32)


def test_paired_validation_is_deterministic_crop_and_resize():
    from torchvision.transforms.v2 import functional as F
    ecg, cmr = _paired(6)
    dm = PairedDataModule(ecg, cmr, train_index=[0, 1, 2, 3], val_index=[4, 5], batch_size=2, crop_length=500,
                          cmr_size=96)
    x, y = dm.val_dataset[1]
    assert x.shape == (1, 12, 500) and y.shape == (3, 96, 96) and x.dtype == y.dtype == torch.float32
    assert torch.equal(x[0], torch.from_numpy(ecg[5, :, :500]))                    # samples 0..crop_length-1
    assert torch.allclose(y, F.resize(torch.from_numpy(cmr[5]), [96, 96], antialias=True))   # bilinear, antialiased
    assert torch.equal(dm.val_dataset[1][1], y)
    full = PairedDataModule(ecg, cmr, train_index=[0, 1], val_index=[4], batch_size=2, crop_length=500)
    assert torch.equal(full.val_dataset[0][1], torch.from_numpy(cmr[4]))           # 210 px: the image itself


def test_paired_training_views_are_augmented_and_full_batches():
    ecg, cmr = _paired(10)
    dm = PairedDataModule(list(ecg), list(cmr), batch_size=4, crop_length=500, cmr_size=64, seed=1)
    assert len(dm.train_dataset) == 10 and dm.val_dataset is None and dm.val_dataloader() == []
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    assert [len(b[0]) for b in batches] == [4, 4]                                 # the ragged pair of 2 is dropped
    assert batches[0][0].shape == (4, 1, 12, 500) and batches[0][1].shape == (4, 3, 64, 64)
    a, b = dm.train_dataset[0], dm.train_dataset[0]
    assert not torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])            # a fresh view each time
    assert float(a[1].min()) >= 0 and float(a[1].max()) <= 1
    # a split smaller than one batch keeps its pairs
    small = PairedDataModule(ecg[:3], cmr[:3], batch_size=4, crop_length=500, cmr_size=64)
    assert [len(b[0]) for b in small.train_dataloader()] == [3]


def test_paired_views_follow_the_seed():
    ecg, cmr = _paired(8)

    def first_batch(seed):
        torch.manual_seed(seed)
        dm = PairedDataModule(ecg, cmr, batch_size=4, crop_length=500, cmr_size=64, seed=seed)
        return next(iter(dm.train_dataloader()))

    a, b, c = first_batch(3), first_batch(3), first_batch(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    generator_views = [PairedDataset(ecg, cmr, train=True, crop_length=500, cmr_size=64,
                                     generator=torch.Generator().manual_seed(9))[2] for _ in range(2)]
    assert torch.equal(generator_views[0][0], generator_views[1][0])


def test_paired_separate_sequences_equal_indices_and_errors():
    ecg, cmr = _paired(6)
    by_index = PairedDataModule(ecg, cmr, train_index=[0, 1, 2], val_index=[3, 4, 5], crop_length=500, cmr_size=64)
    separate = PairedDataModule(ecg[:3], cmr[:3], val_ecg=ecg[3:], val_cmr=cmr[3:], crop_length=500, cmr_size=64)
    for i in range(3):
        for u, v in zip(by_index.val_dataset[i], separate.val_dataset[i]):
            assert torch.equal(u, v)
    # no augmentation: a random window and a plain resize
    plain = PairedDataModule(ecg, cmr, crop_length=500, cmr_size=64, ecg_augment=False, cmr_augment=False)
    x, _ = plain.train_dataset[0]
    start = int(np.flatnonzero(np.isclose(ecg[0, 0], float(x[0, 0, 0])))[0])
    assert torch.equal(x[0], torch.from_numpy(ecg[0, :, start:start + 500]))
    with pytest.raises(ValueError, match="pairs must align"):
        PairedDataModule(ecg, cmr[:5])
    with pytest.raises(ValueError, match="not both"):
        PairedDataModule(ecg, cmr, val_index=[1], val_ecg=ecg, val_cmr=cmr)
    with pytest.raises(ValueError, match="both val_ecg and val_cmr"):
        PairedDataModule(ecg, cmr, val_ecg=ecg)
    with pytest.raises(ValueError, match="out of range"):
        PairedDataModule(ecg, cmr, train_index=[0, 9])
    with pytest.raises(ValueError, match="at least 2"):
        PairedDataModule(ecg, cmr, train_index=[0])
    with pytest.raises(ValueError, match="T >= 2500"):
        PairedDataset(ecg, cmr, train=False)[0]          # 1,000-sample records, default crop 2,500
    with pytest.raises(ValueError, match="non-training"):
        PairedDataset(ecg, cmr, train=False, ecg_augment=lambda x, generator=None: x)
