"""CMR preprocessing, method.md section 2: slice, frames, crop/pad, min-max."""
import numpy as np
import pytest

from cardio_core.errors import RecordError
from cardio_core.data.preprocessing.cmr import center_crop_or_pad, preprocess_cmr, select_frames


# -- frames ---------------------------------------------------------------------------

@pytest.mark.parametrize("ed, es, t, expected", [
    (1, 12, 30, (0, 5, 11)),        # usual ACDC case: ED first
    (1, 1, 30, (0, 0, 0)),
    (5, 10, 30, (4, 6, 9)),
    (30, 12, 30, (29, 5, 11)),      # ES before ED: wrap forward, (29 + 11 + 30) // 2 % 30 = 5
    (28, 2, 30, (27, 29, 1)),       # wrap with mid before the end: (27 + 1 + 30) // 2 = 29
    (25, 3, 28, (24, 27, 2)),       # (24 + 2 + 28) // 2 = 27
    (20, 1, 20, (19, 19, 0)),       # adjacent across the wrap: 39 // 2 % 20 = 19
])
def test_select_frames(ed, es, t, expected):
    assert select_frames(ed, es, t) == expected


def test_wrapped_mid_lies_between_ed_and_es_going_forward():
    t = 30
    for ed in range(1, t + 1):
        for es in range(1, ed):
            ed0, mid0, es0 = select_frames(ed, es, t)
            forward_to_es = (es0 - ed0) % t
            assert 0 <= (mid0 - ed0) % t <= forward_to_es


@pytest.mark.parametrize("ed, es", [(0, 5), (1, 31), (31, 1), (-1, 3), (1.5, 3), ("1", 3), (True, 3)])
def test_frames_out_of_range_or_not_integers_are_clear_errors(ed, es):
    with pytest.raises(ValueError, match="ED|ES"):
        select_frames(ed, es, 30)


def test_integral_floats_and_numpy_ints_are_accepted():
    assert select_frames(np.int64(1), 12.0, 30) == (0, 5, 11)


# -- crop / pad -------------------------------------------------------------------------

def test_crop_232x256_keeps_the_centre():
    img = np.zeros((232, 256))
    img[116, 128] = 1.0                          # the centre pixel
    img[0, 0] = img[-1, -1] = 5.0                # corners are cropped away
    out = center_crop_or_pad(img)
    assert out.shape == (210, 210)
    assert out.max() == 1.0
    assert np.argwhere(out == 1.0).tolist() == [[116 - 11, 128 - 23]]
    np.testing.assert_array_equal(out, img[11:221, 23:233])


def test_pad_128x128_keeps_the_centre_and_pads_with_zeros():
    img = np.arange(1, 128 * 128 + 1, dtype=np.float32).reshape(128, 128)
    out = center_crop_or_pad(img)
    assert out.shape == (210, 210) and out.dtype == np.float32
    np.testing.assert_array_equal(out[41:169, 41:169], img)
    assert out[:41].sum() == 0 and out[169:].sum() == 0 and out[:, :41].sum() == 0 and out[:, 169:].sum() == 0


def test_mixed_crop_one_axis_pad_the_other_and_odd_sizes():
    img = np.ones((215, 99))
    out = center_crop_or_pad(img)
    # 215 -> crop from 2; 99 -> pad 55 before, 56 after
    assert out.shape == (210, 210)
    assert out[:, 55:154].all() and not out[:, :55].any() and not out[:, 154:].any()
    np.testing.assert_array_equal(center_crop_or_pad(np.ones((210, 210))), np.ones((210, 210)))


def test_crop_rejects_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        center_crop_or_pad(np.zeros((4, 4, 4)))


# -- whole pipeline ----------------------------------------------------------------------

def _volume(x=232, y=256, z=9, t=30, seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 800, size=(x, y, z, t)).astype(np.int16)
    for f in range(t):
        vol[:, :, :, f] += f                          # frames distinguishable by their offset
    return vol


def test_output_shape_dtype_and_range():
    out = preprocess_cmr(_volume(), ed=1, es=12)
    assert out.shape == (3, 210, 210) and out.dtype == np.float32
    for c in range(3):
        assert out[c].min() == 0.0 and out[c].max() == 1.0


def test_uses_the_middle_slice_and_the_ed_mid_es_frames_in_order():
    x, y, z, t = 220, 230, 9, 20
    vol = np.zeros((x, y, z, t), dtype=np.float32)
    for f in range(t):
        for s in range(z):
            # a bright square whose size encodes (slice, frame)
            vol[100:100 + 2 + s, 100:100 + 2 + f, s, f] = 1.0
    ed, es = 3, 11                                     # 0-based 2, 6, 10
    out = preprocess_cmr(vol, ed, es)
    for c, f in enumerate((2, 6, 10)):
        rows, cols = np.nonzero(out[c])
        assert np.ptp(rows) + 1 == 2 + z // 2 and np.ptp(cols) + 1 == 2 + f


def test_each_channel_is_min_max_scaled_on_its_own():
    vol = np.zeros((210, 210, 1, 3), dtype=np.float32)
    vol[..., 0, 0] = np.linspace(0, 10, 210)[None, :]
    vol[..., 0, 1] = np.linspace(-500, 500, 210)[None, :]
    vol[..., 0, 2] = np.linspace(3, 4, 210)[None, :]
    out = preprocess_cmr(vol, ed=1, es=3)
    for c in range(3):
        np.testing.assert_allclose(out[c, 0], np.linspace(0, 1, 210), atol=1e-6)


def test_constant_channel_becomes_zeros():
    vol = np.random.default_rng(0).random((220, 240, 4, 10)).astype(np.float32)
    vol[:, :, 2, 4] = 7.0                              # ES frame of the middle slice is constant
    out = preprocess_cmr(vol, ed=1, es=5)
    assert np.all(out[2] == 0.0)
    assert out[0].max() == 1.0


def test_bad_volumes_are_record_errors_naming_the_file():
    with pytest.raises(RecordError) as info:
        preprocess_cmr(np.zeros((10, 10, 10)), 1, 2, source="patient001_4d.nii.gz")
    assert info.value.path == "patient001_4d.nii.gz" and "4-D" in info.value.problem
    with pytest.raises(RecordError, match="ES = 11"):
        preprocess_cmr(np.zeros((10, 10, 3, 10)), 1, 11, source="patient002_4d.nii.gz")
    vol = np.ones((10, 10, 3, 4))
    vol[:, :, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        preprocess_cmr(vol, 1, 2)


def test_padding_happens_before_min_max():
    # The recipe pads, then scales: a small constant image becomes 1 inside, 0 in the padding.
    vol = np.full((200, 200, 1, 2), 7.0, dtype=np.float32)
    out = preprocess_cmr(vol, ed=1, es=2)
    assert np.all(out[:, 5:205, 5:205] == 1.0) and out[:, :5].sum() == 0
