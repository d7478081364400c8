"""Geometry (fit / ImageTransform) and the Preprocessor: layout, channels, dtype, normalisation."""

import cv2
from hobot_npu_infer.core.backends.tensors import TensorSpec
from hobot_npu_infer.core.errors import ConfigError, ImageError
from hobot_npu_infer.core.imaging.geometry import fit, ImageTransform
from hobot_npu_infer.core.pipeline.preprocess import (
    as_three_channels,
    PreparedBatch,
    PreprocessConfig,
    Preprocessor,
    round_up,
)
from hypothesis import given, settings, strategies as st
import numpy as np
from PIL import Image
import pytest

# derandomize: the same examples every run, so a failure is reproducible and CI never flakes
FAST = settings(max_examples=150, deadline=None, database=None, derandomize=True)
SOME = settings(max_examples=40, deadline=None, database=None, derandomize=True)

sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))
targets = st.tuples(st.integers(1, 2000), st.integers(1, 2000))
modes = st.sampled_from(['letterbox', 'stretch'])


def nchw_spec(w=None, h=None, dtype=np.float32, batch=1):
    return TensorSpec('images', (batch, 3, h, w), np.dtype(dtype), 'NCHW')


def nhwc_spec(w=None, h=None, dtype=np.float32, batch=1):
    return TensorSpec('images', (batch, h, w, 3), np.dtype(dtype), 'NHWC')


def bgr_image(h, w, b=10, g=20, r=30):
    image = np.empty((h, w, 3), np.uint8)
    image[:, :] = (b, g, r)
    return image


def random_image(h, w, seed=0, channels=3):
    shape = (h, w) if channels is None else (h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def hwc(batch, i=0):
    """Slot ``i`` of a prepared tensor as H x W x C whatever its layout."""
    assert batch.layout in ('NCHW', 'NHWC')
    return batch.tensor[i].transpose(1, 2, 0) if batch.layout == 'NCHW' else batch.tensor[i]


def forward(points, t: ImageTransform):
    """Source points to model-input points, the mapping cv2.resize plus padding applies."""
    p = np.asarray(points, np.float64)
    return np.stack([p[..., 0] * t.scale_x + t.pad_x, p[..., 1] * t.scale_y + t.pad_y], axis=-1)


# --- geometry.fit ------------------------------------------------------------------------------

def test_fit_stretch_scales_each_axis_without_padding():
    t = fit((400, 300), (320, 320), 'stretch')
    assert t.source_size == (400, 300)
    assert t.scale_x == 320 / 400 and t.scale_y == 320 / 300
    assert (t.pad_x, t.pad_y) == (0, 0)


def test_fit_letterbox_wide_image_pads_top_and_bottom():
    t = fit((640, 360), (320, 320), 'letterbox')
    assert t.scale_x == 0.5 and t.scale_y == 0.5
    assert (t.pad_x, t.pad_y) == (0, 70)


def test_fit_letterbox_tall_image_pads_left_and_right():
    t = fit((360, 640), (320, 320), 'letterbox')
    assert t.scale_x == 0.5 and t.scale_y == 0.5
    assert (t.pad_x, t.pad_y) == (70, 0)


def test_fit_letterbox_same_size_is_identity():
    t = fit((320, 240), (320, 240), 'letterbox')
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (1.0, 1.0, 0, 0)


def test_fit_letterbox_upscales_small_image():
    t = fit((100, 50), (400, 400), 'letterbox')
    assert (t.scale_x, t.scale_y) == (4.0, 4.0)
    assert (t.pad_x, t.pad_y) == (0, 100)


def test_fit_letterbox_scales_are_resized_size_over_source_size():
    # 333 x 100 into 320 x 320: s = 320/333, height 100*s = 96.1 -> 96 pixels
    t = fit((333, 100), (320, 320), 'letterbox')
    assert t.scale_x == 320 / 333
    assert t.scale_y == 96 / 100
    assert (t.pad_x, t.pad_y) == (0, 112)


@FAST
@given(sizes, targets)
def test_fit_letterbox_invariants(source, target):
    t = fit(source, target, 'letterbox')
    (w, h), (tw, th) = source, target
    nw, nh = round(w * t.scale_x), round(h * t.scale_y)
    assert 1 <= nw <= tw and 1 <= nh <= th
    assert nw == tw or nh == th  # one axis is filled
    assert t.pad_x == (tw - nw) // 2 and t.pad_y == (th - nh) // 2  # centred
    assert t.pad_x + nw <= tw and t.pad_y + nh <= th
    # the aspect ratio is kept: both axes use one scale, up to rounding to whole pixels (and a
    # resized side is never less than one pixel)
    s = min(tw / w, th / h)
    assert abs(nw - w * s) <= 0.5 + 1e-9 or nw == 1
    assert abs(nh - h * s) <= 0.5 + 1e-9 or nh == 1


@FAST
@given(sizes, targets)
def test_fit_stretch_fills_target(source, target):
    t = fit(source, target, 'stretch')
    assert round(source[0] * t.scale_x) == target[0]
    assert round(source[1] * t.scale_y) == target[1]
    assert (t.pad_x, t.pad_y) == (0, 0)


@FAST
@given(sizes, targets, modes, st.data())
def test_points_round_trip(source, target, mode, data):
    t = fit(source, target, mode)
    w, h = source
    xs = data.draw(st.lists(st.floats(0, w), min_size=1, max_size=8))
    ys = data.draw(st.lists(st.floats(0, h), min_size=len(xs), max_size=len(xs)))
    points = np.stack([xs, ys], axis=1)
    back = t.points_to_source(forward(points, t))
    assert back.dtype == np.float32 and back.shape == points.shape
    np.testing.assert_allclose(back, points, rtol=1e-6, atol=1e-3)


@FAST
@given(sizes, targets, modes)
def test_image_corners_land_on_resized_area_and_map_back(source, target, mode):
    t = fit(source, target, mode)
    w, h = source
    nw, nh = round(w * t.scale_x), round(h * t.scale_y)
    corners = forward([[0, 0], [w, h]], t)
    np.testing.assert_allclose(corners, [[t.pad_x, t.pad_y], [t.pad_x + nw, t.pad_y + nh]],
                               atol=1e-9)
    box = np.array([[t.pad_x, t.pad_y, t.pad_x + nw, t.pad_y + nh]], np.float32)
    np.testing.assert_allclose(t.boxes_to_source(box), [[0, 0, w, h]], rtol=1e-6, atol=1e-3)


@FAST
@given(sizes, targets, modes, st.data())
def test_boxes_round_trip(source, target, mode, data):
    t = fit(source, target, mode)
    w, h = source
    x1, x2 = sorted(data.draw(st.tuples(st.floats(0, w), st.floats(0, w))))
    y1, y2 = sorted(data.draw(st.tuples(st.floats(0, h), st.floats(0, h))))
    model_box = forward([[x1, y1], [x2, y2]], t).reshape(1, 4).astype(np.float32)
    back = t.boxes_to_source(model_box)
    assert back.dtype == np.float32
    # exact up to float32 rounding of the model-input coordinates, magnified by 1 / scale
    ulp = np.spacing(np.abs(model_box[0]) + 1).astype(np.float64)
    tol = ulp / np.array([t.scale_x, t.scale_y] * 2) + 1e-3
    assert (np.abs(back[0] - [x1, y1, x2, y2]) <= tol).all()


def test_boxes_to_source_clips_to_image_but_points_do_not():
    t = fit((640, 360), (320, 320), 'letterbox')  # scale 0.5, pad_y 70
    boxes = np.array([[-10, 0, 330, 320], [100, 100, 200, 150]], np.float32)
    np.testing.assert_array_equal(t.boxes_to_source(boxes),
                                  [[0, 0, 640, 360], [200, 60, 400, 160]])
    points = np.array([[[-10, 0], [330, 320]]], np.float32)
    np.testing.assert_array_equal(t.points_to_source(points), [[[-20, -140], [660, 500]]])


def test_boxes_to_source_of_no_boxes():
    t = fit((640, 360), (320, 320), 'letterbox')
    out = t.boxes_to_source(np.zeros((0, 4), np.float32))
    assert out.shape == (0, 4) and out.dtype == np.float32


# --- Preprocessor: sizes -----------------------------------------------------------------------

def test_round_up():
    assert [round_up(v, 32) for v in (1, 31, 32, 33, 300, 200)] == [32, 32, 32, 64, 320, 224]
    assert round_up(7, 1) == 7


def test_size_multiple_rounds_image_size_up_for_dynamic_model():
    pre = Preprocessor(PreprocessConfig(size_multiple=32, resize='stretch'), nchw_spec())
    batch = pre.prepare([random_image(200, 300)])
    assert batch.tensor.shape == (1, 3, 224, 320)
    assert batch.input_size == (320, 224)
    t = batch.transforms[0]
    assert (t.scale_x, t.scale_y) == (320 / 300, 224 / 200)


def test_size_multiple_with_letterbox_pads_the_rounding():
    pre = Preprocessor(PreprocessConfig(size_multiple=32), nchw_spec())
    batch = pre.prepare([random_image(200, 300)])
    assert batch.tensor.shape == (1, 3, 224, 320)
    t = batch.transforms[0]
    # s = min(320/300, 224/200) = 320/300 -> 320 x 213, 11 rows of padding split 5 / 6
    assert (t.scale_x, t.scale_y) == (320 / 300, 213 / 200)
    assert (t.pad_x, t.pad_y) == (0, 5)
    out = hwc(batch)
    assert (out[:5] == 114).all() and (out[218:] == 114).all()


def test_size_multiple_applies_to_configured_input_size():
    pre = Preprocessor(PreprocessConfig(input_size=(300, 200), size_multiple=32), nchw_spec())
    assert pre.target_size((10, 10)) == (320, 224)


def test_target_size_precedence():
    fixed = nchw_spec(w=416, h=256)
    assert Preprocessor(PreprocessConfig(), fixed).target_size((640, 480)) == (416, 256)
    assert Preprocessor(PreprocessConfig(input_size=(320, 160)), fixed).target_size(
        (640, 480)) == (320, 160)
    assert Preprocessor(PreprocessConfig(), nchw_spec()).target_size((640, 480)) == (640, 480)
    half = TensorSpec('x', (1, 3, 128, None), np.dtype(np.float32), 'NCHW')
    assert Preprocessor(PreprocessConfig(), half).target_size((640, 480)) == (640, 128)
    assert Preprocessor(PreprocessConfig(), nhwc_spec(w=96, h=64)).target_size((1, 1)) == (96, 64)


def test_dynamic_model_batch_uses_first_image_size():
    pre = Preprocessor(PreprocessConfig(), nchw_spec())
    batch = pre.prepare([random_image(40, 60), random_image(60, 60, seed=1)])
    assert batch.tensor.shape == (2, 3, 40, 60)
    t = batch.transforms[1]
    assert t.source_size == (60, 60)
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == (40 / 60, 40 / 60, 10, 0)


# --- Preprocessor: layout, channel order, dtype ------------------------------------------------

def test_nchw_and_nhwc_hold_the_same_pixels():
    image = random_image(48, 64)
    nchw = Preprocessor(PreprocessConfig(input_size=(64, 64)), nchw_spec()).prepare([image])
    nhwc = Preprocessor(PreprocessConfig(input_size=(64, 64)), nhwc_spec()).prepare([image])
    assert nchw.tensor.shape == (1, 3, 64, 64)
    assert nhwc.tensor.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(nchw.tensor.transpose(0, 2, 3, 1), nhwc.tensor)
    assert nchw.layout == 'NCHW' and nhwc.layout == 'NHWC'


def test_layout_config_overrides_spec():
    pre = Preprocessor(PreprocessConfig(layout='NHWC', input_size=(8, 4)), nchw_spec())
    assert pre.prepare([random_image(4, 8)]).tensor.shape == (1, 4, 8, 3)


def test_spec_without_layout_defaults_to_nchw():
    spec = TensorSpec('x', (1, 3, 8, 8), np.dtype(np.float32))
    assert Preprocessor(PreprocessConfig(), spec).prepare([random_image(8, 8)]).tensor.shape \
        == (1, 3, 8, 8)


@pytest.mark.parametrize('spec', [nchw_spec(), nhwc_spec()], ids=['NCHW', 'NHWC'])
def test_bgr_image_to_rgb_model_swaps_channels(spec):
    pre = Preprocessor(PreprocessConfig(channel_order='rgb', input_size=(6, 4)), spec)
    batch = pre.prepare([bgr_image(4, 6)], 'bgr')
    pixels = hwc(batch).reshape(-1, 3)
    assert (pixels == [30, 20, 10]).all()


@pytest.mark.parametrize('spec', [nchw_spec(), nhwc_spec()], ids=['NCHW', 'NHWC'])
def test_matching_channel_order_is_kept(spec):
    pre = Preprocessor(PreprocessConfig(channel_order='bgr', input_size=(6, 4)), spec)
    pixels = hwc(pre.prepare([bgr_image(4, 6)], 'bgr')).reshape(-1, 3)
    assert (pixels == [10, 20, 30]).all()
    pre = Preprocessor(PreprocessConfig(channel_order='rgb', input_size=(6, 4)), spec)
    pixels = hwc(pre.prepare([bgr_image(4, 6, 30, 20, 10)], 'rgb')).reshape(-1, 3)
    assert (pixels == [30, 20, 10]).all()


def test_channel_order_per_image():
    pre = Preprocessor(PreprocessConfig(channel_order='rgb', input_size=(4, 4)), nchw_spec())
    batch = pre.prepare([bgr_image(4, 4), bgr_image(4, 4)], ['bgr', 'rgb'])
    assert batch.tensor[0, :, 0, 0].tolist() == [30, 20, 10]
    assert batch.tensor[1, :, 0, 0].tolist() == [10, 20, 30]


def test_rgb_to_bgr_swap():
    pre = Preprocessor(PreprocessConfig(channel_order='bgr', input_size=(4, 4)), nchw_spec())
    batch = pre.prepare([bgr_image(4, 4, 1, 2, 3)], 'rgb')  # an rgb image with r=1, g=2, b=3
    assert batch.tensor[0, :, 0, 0].tolist() == [3, 2, 1]


@pytest.mark.parametrize('spec', [nchw_spec(dtype=np.uint8), nhwc_spec(dtype=np.uint8)],
                         ids=['NCHW', 'NHWC'])
def test_uint8_model_input(spec):
    image = random_image(16, 16)
    batch = Preprocessor(PreprocessConfig(channel_order='bgr'), spec).prepare([image])
    assert batch.tensor.dtype == np.uint8
    np.testing.assert_array_equal(hwc(batch), image)


def test_float32_model_input_holds_raw_pixel_values():
    image = random_image(16, 16)
    batch = Preprocessor(PreprocessConfig(channel_order='bgr'), nchw_spec()).prepare([image])
    assert batch.tensor.dtype == np.float32
    np.testing.assert_array_equal(hwc(batch), image.astype(np.float32))


def test_dtype_config_overrides_spec():
    image = random_image(8, 8)
    pre = Preprocessor(PreprocessConfig(dtype='uint8', channel_order='bgr'), nchw_spec())
    batch = pre.prepare([image])
    assert batch.tensor.dtype == np.uint8
    np.testing.assert_array_equal(hwc(batch), image)
    pre = Preprocessor(PreprocessConfig(dtype='float16'), nchw_spec(dtype=np.uint8))
    assert pre.prepare([image]).tensor.dtype == np.float16


# --- Preprocessor: normalisation ---------------------------------------------------------------

def test_normalisation_exact_with_binary_fractions():
    # gain = scale / std and offset = -mean / std are exact in float32 for these values
    config = PreprocessConfig(channel_order='bgr', mean=(128.0, 0.0, 64.0), std=(0.5, 0.25, 2.0),
                              scale=1.0)
    image = random_image(8, 8)
    batch = Preprocessor(config, nchw_spec()).prepare([image])
    expected = (image.astype(np.float64) - [128.0, 0.0, 64.0]) / [0.5, 0.25, 2.0]
    np.testing.assert_array_equal(hwc(batch), expected.astype(np.float32))


def test_normalisation_imagenet_values():
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    config = PreprocessConfig(channel_order='rgb', mean=mean, std=std)
    image = random_image(10, 12)
    batch = Preprocessor(config, nhwc_spec()).prepare([image], 'bgr')
    expected = (image[:, :, ::-1].astype(np.float64) - mean) / std
    np.testing.assert_allclose(hwc(batch), expected, rtol=1e-6, atol=2e-6)


def test_scale_only_normalisation():
    config = PreprocessConfig(channel_order='bgr', scale=1 / 255)
    image = np.array([[[0, 128, 255]]], np.uint8)
    batch = Preprocessor(config, nchw_spec()).prepare([image])
    np.testing.assert_allclose(batch.tensor[0, :, 0, 0], [0.0, 128 / 255, 1.0], rtol=1e-6)
    assert batch.tensor.max() <= 1.0 + 1e-6


def test_normalisation_applies_to_pad_band_but_not_to_padding_slots():
    config = PreprocessConfig(input_size=(8, 8), channel_order='bgr', mean=(10.0, 20.0, 30.0),
                              std=(2.0, 4.0, 8.0), scale=0.5, pad_value=100)
    batch = Preprocessor(config, nchw_spec()).prepare([bgr_image(4, 8, 0, 0, 0)], batch_size=2)
    pad = (np.array([100.0] * 3) * 0.5 - [10, 20, 30]) / [2, 4, 8]
    content = (np.zeros(3) - [10, 20, 30]) / [2, 4, 8]
    np.testing.assert_allclose(batch.tensor[0, :, 0, 0], pad)  # top band
    np.testing.assert_allclose(batch.tensor[0, :, 4, 4], content)
    assert (batch.tensor[1] == 0).all()


def test_normalisation_needs_float_input():
    with pytest.raises(ConfigError):
        Preprocessor(PreprocessConfig(mean=(1.0, 2.0, 3.0)), nchw_spec(dtype=np.uint8))
    with pytest.raises(ConfigError):
        Preprocessor(PreprocessConfig(scale=0.5, dtype='int8'), nchw_spec())


# --- Preprocessor: resize and padding placement ------------------------------------------------

@pytest.mark.parametrize('spec', [nchw_spec(), nhwc_spec()], ids=['NCHW', 'NHWC'])
def test_letterbox_places_unscaled_image_between_pad_bands(spec):
    image = random_image(16, 32)
    pre = Preprocessor(PreprocessConfig(input_size=(32, 32), channel_order='bgr', pad_value=7),
                       spec)
    batch = pre.prepare([image])
    t = batch.transforms[0]
    assert (t.pad_x, t.pad_y, t.scale_x, t.scale_y) == (0, 8, 1.0, 1.0)
    out = hwc(batch)
    np.testing.assert_array_equal(out[8:24], image)
    assert (out[:8] == 7).all() and (out[24:] == 7).all()


def test_letterbox_places_resized_image_at_pad_offsets():
    image = random_image(30, 20)  # tall: 20 x 30 into 64 x 64 -> 43 x 64, pad_x 10
    pre = Preprocessor(PreprocessConfig(input_size=(64, 64), channel_order='bgr', pad_value=0),
                       nchw_spec(dtype=np.uint8))
    batch = pre.prepare([image])
    t = batch.transforms[0]
    nw, nh = round(20 * t.scale_x), round(30 * t.scale_y)
    assert (nw, nh) == (43, 64) and (t.pad_x, t.pad_y) == (10, 0)
    out = hwc(batch)
    expected = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out[:, 10:53], expected)
    assert (out[:, :10] == 0).all() and (out[:, 53:] == 0).all()


@pytest.mark.parametrize('pad_value', [0, 114, 255])
def test_pad_value_fills_letterbox_bands(pad_value):
    pre = Preprocessor(PreprocessConfig(input_size=(20, 20), pad_value=pad_value),
                       nchw_spec(dtype=np.uint8))
    batch = pre.prepare([bgr_image(10, 20, 1, 2, 3)])
    out = hwc(batch)
    assert (out[:5] == pad_value).all() and (out[15:] == pad_value).all()
    assert (out[5:15] == [3, 2, 1]).all()


def test_stretch_fills_whole_input_with_resized_image():
    image = random_image(30, 40)
    pre = Preprocessor(PreprocessConfig(input_size=(32, 32), resize='stretch',
                                        channel_order='bgr', pad_value=99),
                       nhwc_spec(dtype=np.uint8))
    batch = pre.prepare([image])
    np.testing.assert_array_equal(batch.tensor[0], cv2.resize(image, (32, 32)))
    t = batch.transforms[0]
    assert (t.pad_x, t.pad_y, t.scale_x, t.scale_y) == (0, 0, 32 / 40, 32 / 30)


@SOME
@given(st.integers(1, 120), st.integers(1, 120), st.integers(1, 96), st.integers(1, 96),
       st.sampled_from(['NCHW', 'NHWC']))
def test_letterbox_content_region_matches_transform(w, h, tw, th, layout):
    spec = nchw_spec(dtype=np.uint8) if layout == 'NCHW' else nhwc_spec(dtype=np.uint8)
    pre = Preprocessor(PreprocessConfig(input_size=(tw, th), channel_order='bgr', pad_value=1),
                       spec)
    batch = pre.prepare([bgr_image(h, w, 200, 150, 100)])
    t = batch.transforms[0]
    nw, nh = round(w * t.scale_x), round(h * t.scale_y)
    out = hwc(batch)
    assert out.shape == (th, tw, 3)
    inside = np.zeros((th, tw), bool)
    inside[t.pad_y:t.pad_y + nh, t.pad_x:t.pad_x + nw] = True
    assert (out[inside] == [200, 150, 100]).all()
    assert (out[~inside] == 1).all()


# --- Preprocessor: image kinds -----------------------------------------------------------------

@pytest.mark.parametrize('shape', [(6, 8), (6, 8, 1)], ids=['HxW', 'HxWx1'])
def test_grey_image_becomes_three_equal_channels(shape):
    grey = random_image(6, 8, channels=None).reshape(shape)
    for order in ('rgb', 'bgr'):
        pre = Preprocessor(PreprocessConfig(channel_order=order), nchw_spec(dtype=np.uint8))
        out = hwc(pre.prepare([grey], 'rgb'))
        for c in range(3):
            np.testing.assert_array_equal(out[:, :, c], grey.reshape(6, 8))


def test_four_channel_image_drops_alpha_and_keeps_order():
    image = np.empty((4, 4, 4), np.uint8)
    image[:, :] = (10, 20, 30, 250)  # b g r a
    pre = Preprocessor(PreprocessConfig(channel_order='rgb'), nchw_spec(dtype=np.uint8))
    assert pre.prepare([image], 'bgr').tensor[0, :, 0, 0].tolist() == [30, 20, 10]
    pre = Preprocessor(PreprocessConfig(channel_order='bgr'), nchw_spec(dtype=np.uint8))
    assert pre.prepare([image], 'bgr').tensor[0, :, 0, 0].tolist() == [10, 20, 30]


def test_as_three_channels():
    image, order = as_three_channels(np.zeros((2, 3), np.uint8), 'rgb')
    assert image.shape == (2, 3, 3) and order == 'bgr'
    image, order = as_three_channels(np.zeros((2, 3, 4), np.uint8), 'rgb')
    assert image.shape == (2, 3, 3) and order == 'rgb'
    with pytest.raises(ImageError):
        as_three_channels(np.zeros((2, 3, 2), np.uint8), 'rgb')


def test_non_contiguous_image_view():
    big = random_image(20, 40)
    view = big[::2, ::2]
    pre = Preprocessor(PreprocessConfig(channel_order='bgr'), nchw_spec(dtype=np.uint8))
    np.testing.assert_array_equal(hwc(pre.prepare([view])), view)


def test_input_image_is_not_modified():
    image = random_image(30, 50)
    before = image.copy()
    config = PreprocessConfig(input_size=(32, 32), mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0))
    Preprocessor(config, nchw_spec()).prepare([image], 'bgr')
    np.testing.assert_array_equal(image, before)


# --- Preprocessor: batches ---------------------------------------------------------------------

def test_batch_size_pads_with_zero_slots():
    pre = Preprocessor(PreprocessConfig(input_size=(8, 8)), nchw_spec(dtype=np.uint8))
    images = [bgr_image(8, 8, i + 1, i + 1, i + 1) for i in range(3)]
    batch = pre.prepare(images, batch_size=4)
    assert batch.tensor.shape == (4, 3, 8, 8)
    assert len(batch.transforms) == 3
    for i in range(3):
        assert (batch.tensor[i] == i + 1).all()
    assert (batch.tensor[3] == 0).all()


def test_batch_size_smaller_than_images_keeps_all_images():
    pre = Preprocessor(PreprocessConfig(input_size=(8, 8)), nchw_spec())
    batch = pre.prepare([random_image(8, 8)] * 3, batch_size=2)
    assert batch.tensor.shape[0] == 3 and len(batch.transforms) == 3


def test_prepared_batch_input_size_by_layout():
    pre = Preprocessor(PreprocessConfig(input_size=(50, 3)), nhwc_spec())
    batch = pre.prepare([random_image(3, 50)])
    assert batch.tensor.shape == (1, 3, 50, 3)
    assert batch.input_size == (50, 3)  # not confused by a height of 3
    pre = Preprocessor(PreprocessConfig(input_size=(50, 3)), nchw_spec())
    assert pre.prepare([random_image(3, 50)]).input_size == (50, 3)
    assert PreparedBatch(np.zeros((1, 3, 20, 30), np.float32), [], 'NCHW').input_size == (30, 20)
    assert PreparedBatch(np.zeros((1, 20, 30, 3), np.float32), [], 'NHWC').input_size == (30, 20)


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize('image', [
    np.zeros((0, 10, 3), np.uint8), np.zeros((10, 0, 3), np.uint8), np.zeros((0, 0), np.uint8),
    np.zeros(10, np.uint8)], ids=['no rows', 'no columns', 'empty grey', '1-D'])
def test_image_without_pixels_raises_image_error(image):
    pre = Preprocessor(PreprocessConfig(input_size=(8, 8)), nchw_spec())
    with pytest.raises(ImageError):
        pre.prepare([image])
    with pytest.raises(ImageError):
        pre.prepare([random_image(8, 8), image])


def test_bad_images_raise_image_error():
    pre = Preprocessor(PreprocessConfig(input_size=(8, 8)), nchw_spec())
    with pytest.raises(ImageError):
        pre.prepare([])
    with pytest.raises(ImageError):
        pre.prepare([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ImageError):
        pre.prepare([np.zeros((8, 8, 2), np.uint8)])
    with pytest.raises(ImageError):
        pre.prepare([np.zeros((8, 8, 3, 1), np.uint8)])


@pytest.mark.parametrize('options', [
    {'resize': 'fill'},
    {'channel_order': 'gbr'},
    {'layout': 'NCWH'},
    {'size_multiple': 0},
    {'input_size': (0, 10)},
    {'input_size': (10,)},
    {'input_size': (10, 10, 3)},
    {'mean': (1.0, 2.0)},
    {'std': (1.0, 1.0, 1.0, 1.0)},
    {'std': (1.0, 0.0, 1.0)},
    {'pad_value': -1},
    {'pad_value': 256},
    {'dtype': 'fp32'},
    {'dtype': 'bool'},
    {'dtype': 'complex64'},
], ids=lambda o: ','.join(f'{k}={v}' for k, v in o.items()))
def test_invalid_config_raises_config_error(options):
    config = PreprocessConfig(**options)
    with pytest.raises(ConfigError):
        config.validate()
    with pytest.raises(ConfigError):
        Preprocessor(config, nchw_spec())


def test_default_and_valid_configs_validate():
    PreprocessConfig().validate()
    PreprocessConfig(resize='stretch', channel_order='bgr', layout='NHWC', size_multiple=32,
                     input_size=(1, 1), dtype='float16', pad_value=0).validate()
    PreprocessConfig(dtype='uint8', pad_value=255).validate()


def test_crop_scales_the_short_side_and_cuts_the_long_sides_ends():
    """As torchvision's Resize(224) then CenterCrop(224), which Ultralytics feeds classifiers."""
    image = np.random.default_rng(3).integers(0, 256, (1080, 810, 3), np.uint8)
    pre = Preprocessor(PreprocessConfig(resize='crop', channel_order='bgr'),
                       nhwc_spec(224, 224, np.uint8))
    batch = pre.prepare([image])
    [transform] = batch.transforms
    resized = np.asarray(Image.fromarray(image).resize((224, 298), Image.BILINEAR))  # torchvision
    np.testing.assert_array_equal(batch.tensor[0], resized[37:261])  # round((298 - 224) / 2)
    assert (transform.pad_x, transform.pad_y) == (0, -37)
    np.testing.assert_allclose(transform.points_to_source(np.float32([[112, 112]])),
                               [[405, 540]], atol=2)  # the centre stays the centre
