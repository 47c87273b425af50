"""Synthetic cine MRI: each group's criteria hold when measured from its own masks."""
import numpy as np
import pytest

from cardio_core.demo.cmr_synth import (LV_LABEL, MYO_LABEL, RV_LABEL, bsa_mosteller, cardiac_indices,
                                        meets_group_criteria, synthesize_cine)
from cardio_core.labels import ACDC_GROUPS

SPACING = (1.7, 1.7, 10.0)


@pytest.mark.parametrize("group", ACDC_GROUPS)
@pytest.mark.parametrize("seed,bsa", [(0, 1.6), (1, 2.2)])
def test_group_criteria_hold_on_the_masks(group, seed, bsa):
    vol, masks, ed, es = synthesize_cine(group, np.random.default_rng(seed), n_frames=12, spacing=SPACING, bsa=bsa)
    assert vol.shape == masks.shape == (128, 128, 8, 12)
    assert vol.dtype == np.float32 and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, RV_LABEL, MYO_LABEL, LV_LABEL}
    assert ed == 1 and 1 < es < 12
    ix = cardiac_indices(masks, SPACING, ed, es, bsa)
    assert meets_group_criteria(ix, group), ix
    # the other groups' defining criteria fail where they should
    if group == "NOR":
        assert not any(meets_group_criteria(ix, g) for g in ("DCM", "MINF", "RV"))
    # blood is bright, myocardium dark (SSFP)
    assert vol[masks == LV_LABEL].mean() > 2 * vol[masks == MYO_LABEL].mean()


def test_myocardium_keeps_its_area_and_thickens_in_systole():
    _, masks, ed, es = synthesize_cine("NOR", np.random.default_rng(0), n_frames=12, spacing=SPACING)
    myo_area = (masks == MYO_LABEL).sum(axis=(0, 1))           # (z, t)
    assert np.all(myo_area == myo_area[:, :1])
    ix_ed = cardiac_indices(masks, SPACING, ed, ed)["max_wall_mm"]
    ix_es = cardiac_indices(masks, SPACING, es, es)["max_wall_mm"]
    assert ix_es > ix_ed


def test_minf_has_an_akinetic_sector():
    # In MINF part of the ED cavity stays cavity at ES far from the centre; in NOR it all moves in.
    def far_cavity_kept(group):
        _, m, ed, es = synthesize_cine(group, np.random.default_rng(2), n_frames=12, spacing=SPACING)
        z = 2
        lv_ed, lv_es = m[:, :, z, ed - 1] == LV_LABEL, m[:, :, z, es - 1] == LV_LABEL
        r_ed = np.sqrt(lv_ed.sum() / np.pi)
        xx, yy = np.nonzero(lv_ed)
        cx, cy = xx.mean(), yy.mean()
        ex, ey = np.nonzero(lv_es)
        return np.hypot(ex - cx, ey - cy).max() / r_ed
    assert far_cavity_kept("MINF") > 0.9 > far_cavity_kept("NOR")


def test_large_image_for_the_crop_path():
    vol, masks, ed, es = synthesize_cine("HCM", np.random.default_rng(0), shape=(232, 256), n_slices=6,
                                         n_frames=8, spacing=(1.4, 1.4, 10.0))
    assert vol.shape == (232, 256, 6, 8)
    assert meets_group_criteria(cardiac_indices(masks, (1.4, 1.4, 10.0), ed, es, 1.9), "HCM")


def test_bad_arguments_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="group"):
        synthesize_cine("ABC", rng)
    with pytest.raises(ValueError, match="fit"):
        synthesize_cine("DCM", rng, shape=(64, 64), spacing=(1.0, 1.0, 10.0), bsa=2.4)
    with pytest.raises(ValueError):
        bsa_mosteller(0, 70)
    with pytest.raises(ValueError, match="1-based"):
        cardiac_indices(np.zeros((8, 8, 2, 4), np.uint8), SPACING, 0, 2)
