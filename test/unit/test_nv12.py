"""
NV12.

NV12: conversion exact against OpenCV, the pre-processor's NV12 batches, and pass-through of
camera NV12 at the model size, from the ROS message to the batch tensor, byte for byte.
"""

from types import SimpleNamespace

import cv2
from hobot_npu_infer.core.backends.tensors import NV12, TensorSpec
from hobot_npu_infer.core.errors import ConfigError, ImageError
from hobot_npu_infer.core.imaging.nv12 import bgr_to_nv12, nv12_to_bgr, pixel_size
from hobot_npu_infer.core.imaging.sample_images import load_sample
from hobot_npu_infer.core.pipeline.preprocess import PreprocessConfig, Preprocessor
from hobot_npu_infer.ros.image_conversion import image_to_array
import numpy as np
import pytest


def opencv_nv12(image: np.ndarray) -> np.ndarray:
    """Make the reference: OpenCV's I420 (Y, all U, all V), its U and V re-interleaved by hand."""
    h, w = image.shape[:2]
    flat = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    quarter = (h // 2) * (w // 2)
    u, v = flat[h * w:h * w + quarter], flat[h * w + quarter:]
    uv = np.empty(2 * quarter, np.uint8)
    uv[0::2], uv[1::2] = u, v
    return np.concatenate([flat[:h * w], uv]).reshape(h * 3 // 2, w)


def nv12_spec(width: int, height: int, batch: int = 1) -> TensorSpec:
    return TensorSpec('image', (batch, height * 3 // 2, width), np.dtype(np.uint8), NV12)


@pytest.mark.parametrize('size', [(640, 480), (2, 2), (34, 18), (512, 512)])
def test_nv12_conversion_is_exact_against_opencvs_i420_reinterleaved(size):
    w, h = size
    rng = np.random.default_rng(w * h)
    noise = rng.integers(0, 256, (h, w, 3), np.uint8)
    photo = cv2.resize(load_sample('astronaut'), (w, h))
    for image in (noise, photo):
        np.testing.assert_array_equal(bgr_to_nv12(image), opencv_nv12(image))
        np.testing.assert_array_equal(bgr_to_nv12(image[:, :, ::-1].copy(), 'rgb'),
                                      opencv_nv12(image))


def test_conversion_writes_into_a_slot_of_a_batch_tensor():
    image = cv2.resize(load_sample('coffee'), (64, 48))
    batch = np.zeros((3, 72, 64), np.uint8)
    slot = batch[1]
    assert bgr_to_nv12(image, out=slot) is slot
    np.testing.assert_array_equal(batch[1], opencv_nv12(image))
    assert not batch[0].any() and not batch[2].any()


def test_nv12_to_bgr_is_opencvs_decoder_and_reads_strided_rows():
    nv12 = bgr_to_nv12(cv2.resize(load_sample('astronaut'), (64, 48)))
    padded = np.full((72, 80), 0xAB, np.uint8)
    padded[:, :64] = nv12
    np.testing.assert_array_equal(nv12_to_bgr(padded[:, :64]),
                                  cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12))
    assert pixel_size(nv12) == (64, 48)


@pytest.mark.parametrize('shape', [(71, 64), (72, 63), (72, 64, 3), (0, 64)])
def test_arrays_that_are_not_nv12_are_image_errors(shape):
    with pytest.raises(ImageError, match='not \\(H\\*3/2, W\\)'):
        nv12_to_bgr(np.zeros(shape, np.uint8))


def test_odd_sizes_cannot_be_nv12():
    with pytest.raises(ImageError, match='even width and height, got 5x4'):
        bgr_to_nv12(np.zeros((4, 5, 3), np.uint8))


def test_an_nv12_spec_knows_its_image_size():
    assert nv12_spec(640, 480).image_size == (640, 480)
    assert TensorSpec('x', (1, None, 640), np.dtype(np.uint8), NV12).image_size == (640, None)


@pytest.mark.parametrize('resize', ['letterbox', 'stretch'])
def test_preprocessor_writes_nv12_of_the_resized_image_at_the_model_size(resize):
    image = load_sample('astronaut')[:400]  # 512x400: letterboxing pads top and bottom
    config = PreprocessConfig(resize=resize)
    batch = Preprocessor(config, nv12_spec(320, 240, batch=2)).prepare([image], 'bgr', 2)
    assert batch.tensor.shape == (2, 360, 320) and batch.tensor.dtype == np.uint8
    assert batch.layout == NV12 and batch.input_size == (320, 240)
    # The same resize in BGR by the ordinary path, then converted: identical bytes.
    bgr = Preprocessor(PreprocessConfig(resize=resize, channel_order='bgr'),
                       TensorSpec('x', (1, 240, 320, 3), np.dtype(np.uint8), 'NHWC'))
    canvas = bgr.prepare([image], 'bgr')
    np.testing.assert_array_equal(batch.tensor[0], opencv_nv12(canvas.tensor[0]))
    assert batch.transforms[0] == canvas.transforms[0]
    assert not batch.tensor[1].any()  # the padding slot


def test_rgb_images_give_the_same_nv12_as_their_bgr():
    image = load_sample('coffee')
    pre = Preprocessor(PreprocessConfig(), nv12_spec(96, 64))
    np.testing.assert_array_equal(pre.prepare([image], 'bgr').tensor,
                                  pre.prepare([image[:, :, ::-1]], 'rgb').tensor)


def test_nv12_image_at_the_model_size_passes_through_byte_for_byte():
    nv12 = bgr_to_nv12(cv2.resize(load_sample('chelsea'), (64, 48)))
    nv12[0, 0] = 3  # not a value a BGR round trip would give back in place
    rows = np.full((72, 70), 0xAB, np.uint8)  # a camera's padded rows: a strided view
    rows[:, :64] = nv12
    batch = Preprocessor(PreprocessConfig(), nv12_spec(64, 48)).prepare([rows[:, :64]], 'nv12')
    np.testing.assert_array_equal(batch.tensor[0], nv12)
    assert batch.transforms[0].scale_x == 1 and batch.transforms[0].pad_x == 0
    assert batch.transforms[0].source_size == (64, 48)


def test_nv12_image_of_another_size_is_resized_like_its_bgr():
    nv12 = bgr_to_nv12(cv2.resize(load_sample('chelsea'), (128, 96)))
    pre = Preprocessor(PreprocessConfig(), nv12_spec(64, 48))
    np.testing.assert_array_equal(pre.prepare([nv12], 'nv12').tensor,
                                  pre.prepare([nv12_to_bgr(nv12)], 'bgr').tensor)
    assert pre.prepare([nv12], 'nv12').transforms[0].source_size == (128, 96)


def test_other_models_get_nv12_images_as_bgr():
    nv12 = bgr_to_nv12(cv2.resize(load_sample('chelsea'), (64, 48)))
    spec = TensorSpec('x', (1, 3, 48, 64), np.dtype(np.float32), 'NCHW')
    pre = Preprocessor(PreprocessConfig(channel_order='bgr'), spec)
    np.testing.assert_array_equal(pre.prepare([nv12], 'nv12').tensor,
                                  pre.prepare([nv12_to_bgr(nv12)], 'bgr').tensor)


def test_nv12_model_settings_that_cannot_apply_are_config_errors():
    with pytest.raises(ConfigError, match=r'takes NV12 images.*not NCHW'):
        Preprocessor(PreprocessConfig(layout='NCHW'), nv12_spec(64, 48))
    with pytest.raises(ConfigError, match=r'takes NV12 images.*not float32'):
        Preprocessor(PreprocessConfig(dtype='float32'), nv12_spec(64, 48))
    with pytest.raises(ConfigError, match='normalisation needs a float model input'):
        Preprocessor(PreprocessConfig(mean=(1.0, 1.0, 1.0)), nv12_spec(64, 48))
    with pytest.raises(ConfigError, match='even size, got 65x48'):
        Preprocessor(PreprocessConfig(input_size=(65, 48)), TensorSpec(
            'x', (1, None, None), np.dtype(np.uint8), NV12)).prepare([load_sample('coffee')])


def test_ros_nv12_message_reaches_the_batch_tensor_untouched_when_kept():
    nv12 = bgr_to_nv12(cv2.resize(load_sample('astronaut'), (64, 48)))
    padded = np.full((72, 66), 0xCD, np.uint8)
    padded[:, :64] = nv12
    msg = SimpleNamespace(encoding='nv12', width=64, height=48, step=66,
                          data=padded.tobytes())
    bgr, order = image_to_array(msg)  # every other model still gets BGR
    assert order == 'bgr' and bgr.shape == (48, 64, 3)
    np.testing.assert_array_equal(bgr, cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12))
    kept, order = image_to_array(msg, keep_nv12=True)
    assert order == 'nv12' and kept.shape == (72, 64)
    assert np.shares_memory(kept, np.frombuffer(msg.data, np.uint8))  # a view, no copy
    batch = Preprocessor(PreprocessConfig(), nv12_spec(64, 48)).prepare([kept], order)
    assert batch.tensor[0].tobytes() == nv12.tobytes()


def test_keep_nv12_leaves_other_encodings_alone():
    msg = SimpleNamespace(encoding='rgb8', width=2, height=2, step=6, data=bytes(range(12)))
    image, order = image_to_array(msg, keep_nv12=True)
    assert order == 'rgb' and image.shape == (2, 2, 3)
