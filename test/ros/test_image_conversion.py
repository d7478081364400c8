"""sensor_msgs images <-> numpy without cv_bridge: layouts, zero copy, errors, fuzzing."""

import array
import ast
import os
import subprocess
import sys
from types import SimpleNamespace

from conftest import BLOCK_ROS, REPO
import cv2
from error_checks import raises_one_line
from hobot_npu_infer.core.errors import ImageError, InferError
from hobot_npu_infer.ros import image_conversion as ic
from hobot_npu_infer.ros.image_conversion import (
    array_to_compressed_msg,
    array_to_image_msg,
    compressed_to_array,
    ERROR_CAUSES,
    image_to_array,
    ImageConversionError,
    SUPPORTED_ENCODINGS,
)
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

EXACT = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
YUV = ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv', 'nv12')
UNSUPPORTED = ('16UC1', '32FC1', 'bayer_rggb8', 'nv21', 'mono16', 'rgb16', '8UC3', '')
BPP = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'yuv422': 2, 'uyvy': 2,
       'yuv422_yuy2': 2, 'yuyv': 2, 'nv12': 1}
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope='module')
def astronaut():
    """Provide a real photograph, BGR, cropped to a non-square even size (512x384)."""
    import skimage.data
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image[64:448])


def make_msg(encoding, width, height, step, data):
    msg = Image()
    msg.encoding = encoding
    msg.width = width
    msg.height = height
    msg.step = step
    msg.data = array.array('B', bytes(data))
    return msg


def pad_rows(plane, step, junk=0xAB):
    """Pack a (rows, row_bytes) uint8 plane as bytes, rows ``step`` apart, the padding junk."""
    rows, row_bytes = plane.shape
    out = np.full((rows, step), junk, np.uint8)
    out[:, :row_bytes] = plane
    return out.tobytes()


def data_view(msg):
    return np.frombuffer(msg.data, np.uint8)


def expected_view(image_bgr, encoding):
    """Return what image_to_array should give back for an exact encoding of a BGR image."""
    if encoding == 'mono8':
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY), 'bgr'
    if encoding.startswith('rgb'):
        return image_bgr[:, :, ::-1], 'rgb'
    return image_bgr, 'bgr'


def conversion_error(cause, convert, *args, **kwargs):
    """
    Return the text of the error ``convert`` raises, checked to be one line naming ``cause``.

    Every kind of bad input is checked the same way, so the check is written once.
    """
    error = raises_one_line(ImageConversionError, convert, *args, **kwargs)
    assert error.cause == cause, str(error)
    assert error.cause in ERROR_CAUSES
    assert isinstance(error, ImageError) and isinstance(error, InferError)
    return str(error)


# --- round trips ------------------------------------------------------------------------------


def test_supported_encodings_are_exactly_the_documented_ones():
    assert set(SUPPORTED_ENCODINGS) == set(EXACT + YUV)
    assert isinstance(SUPPORTED_ENCODINGS, tuple)


@pytest.mark.parametrize('encoding', EXACT)
def test_exact_encodings_round_trip_bit_for_bit(astronaut, encoding):
    msg = array_to_image_msg(astronaut, encoding)
    height, width = astronaut.shape[:2]
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (height, width, encoding, 0)
    assert msg.step == width * BPP[encoding]
    assert isinstance(msg.data, array.array) and len(msg.data) == height * msg.step
    got, order = image_to_array(msg)
    want, want_order = expected_view(astronaut, encoding)
    assert order == want_order
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('encoding', ('rgba8', 'bgra8'))
def test_four_channel_messages_carry_opaque_alpha(astronaut, encoding):
    msg = array_to_image_msg(astronaut, encoding)
    pixels = data_view(msg).reshape(msg.height, msg.width, 4)
    assert (pixels[:, :, 3] == 255).all()
    want = astronaut if encoding == 'bgra8' else astronaut[:, :, ::-1]
    np.testing.assert_array_equal(pixels[:, :, :3], want)


@pytest.mark.parametrize('encoding', YUV)
def test_yuv_encodings_round_trip_within_a_small_error(astronaut, encoding):
    msg = array_to_image_msg(astronaut, encoding)
    height, width = astronaut.shape[:2]
    assert (msg.height, msg.width, msg.encoding) == (height, width, encoding)
    rows = height * 3 // 2 if encoding == 'nv12' else height
    assert msg.step == width * BPP[encoding]
    assert len(msg.data) == rows * msg.step
    got, order = image_to_array(msg)
    assert order == 'bgr' and got.shape == astronaut.shape and got.dtype == np.uint8
    error = np.abs(got.astype(np.int16) - astronaut).mean()
    assert error < 3, f'{encoding}: mean abs error {error:.2f}'


@pytest.mark.parametrize('encoding,code', [
    ('yuv422', cv2.COLOR_YUV2BGR_UYVY), ('uyvy', cv2.COLOR_YUV2BGR_UYVY),
    ('yuv422_yuy2', cv2.COLOR_YUV2BGR_YUY2), ('yuyv', cv2.COLOR_YUV2BGR_YUY2)])
def test_packed_422_byte_orders(encoding, code):
    """
    ROS 'yuv422' is UYVY; 'yuv422_yuy2' is YUYV.

    A white and a red pixel pair tell them apart.
    """
    # Y U/V pairs: white (Y 235, U=V 128) then red (Y 81, U 90, V 240), as (U, Y0, V, Y1) or
    # (Y0, U, Y1, V) per 2 pixels.
    uyvy = [128, 235, 128, 235, 90, 81, 240, 81]
    yuyv = [235, 128, 235, 128, 81, 90, 81, 240]
    data = uyvy if code == cv2.COLOR_YUV2BGR_UYVY else yuyv
    got, order = image_to_array(make_msg(encoding, 4, 1, 8, data))
    assert order == 'bgr'
    assert (got[0, :2] >= 250).all()  # white
    assert (got[0, 2:, 2] >= 250).all() and (got[0, 2:, :2] <= 5).all()  # red in BGR
    reference = cv2.cvtColor(np.array(data, np.uint8).reshape(1, 4, 2), code)
    np.testing.assert_array_equal(got, reference)


def test_uyvy_and_yuyv_messages_hold_the_same_samples_swapped(astronaut):
    uyvy = data_view(array_to_image_msg(astronaut, 'uyvy')).reshape(-1, 2)
    yuyv = data_view(array_to_image_msg(astronaut, 'yuyv')).reshape(-1, 2)
    np.testing.assert_array_equal(uyvy, yuyv[:, ::-1])
    np.testing.assert_array_equal(data_view(array_to_image_msg(astronaut, 'yuv422')),
                                  data_view(array_to_image_msg(astronaut, 'uyvy')))


def test_nv12_message_layout_is_y_plane_then_interleaved_uv(astronaut):
    height, width = astronaut.shape[:2]
    msg = array_to_image_msg(astronaut, 'nv12')
    planes = data_view(msg).reshape(height * 3 // 2, width)
    i420 = cv2.cvtColor(astronaut, cv2.COLOR_BGR2YUV_I420)
    np.testing.assert_array_equal(planes[:height], i420[:height])
    quarter = (height // 2) * (width // 2)
    uv = planes[height:].reshape(-1, 2)
    np.testing.assert_array_equal(uv[:, 0], i420[height:].reshape(-1)[:quarter])
    np.testing.assert_array_equal(uv[:, 1], i420[height:].reshape(-1)[quarter:])
    # What OpenCV's own NV12 decoder reads from those bytes is what image_to_array returns.
    got, _ = image_to_array(msg)
    np.testing.assert_array_equal(got, cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_NV12))


@pytest.mark.parametrize('uyvy', (False, True))
def test_numpy_fallback_for_old_opencv_matches_opencv(astronaut, uyvy):
    """Match OpenCV: before 4.8 (Ubuntu 22.04 on the boards) it has no BGR->YUY2/UYVY code."""
    ours = ic._bgr_to_packed_422_numpy(astronaut, uyvy)
    assert ours.shape == astronaut.shape[:2] + (2,) and ours.dtype == np.uint8
    decode = cv2.COLOR_YUV2BGR_UYVY if uyvy else cv2.COLOR_YUV2BGR_YUY2
    back = cv2.cvtColor(ours, decode)
    assert np.abs(back.astype(np.int16) - astronaut).mean() < 3
    code = getattr(cv2, 'COLOR_BGR2YUV_UYVY' if uyvy else 'COLOR_BGR2YUV_YUY2', None)
    if code is not None:
        diff = np.abs(cv2.cvtColor(astronaut, code).astype(np.int16) - ours)
        assert diff.max() <= 2 and diff.mean() < 0.5


def test_packed_422_uses_the_fallback_when_opencv_lacks_the_code(astronaut, monkeypatch):
    want = ic._bgr_to_packed_422_numpy(astronaut, False)
    monkeypatch.delattr(cv2, 'COLOR_BGR2YUV_YUY2', raising=False)
    msg = array_to_image_msg(astronaut, 'yuyv')
    np.testing.assert_array_equal(data_view(msg).reshape(want.shape), want)


# --- zero copy and row padding ----------------------------------------------------------------


@pytest.mark.parametrize('encoding', EXACT)
@pytest.mark.parametrize('padding', (0, 5, 64))
def test_exact_encodings_are_views_of_the_message_data(astronaut, encoding, padding):
    packed = data_view(array_to_image_msg(astronaut, encoding))
    height, width = astronaut.shape[:2]
    row = width * BPP[encoding]
    msg = make_msg(encoding, width, height, row + padding,
                   pad_rows(packed.reshape(height, row), row + padding))
    got, order = image_to_array(msg)
    assert np.shares_memory(got, data_view(msg))
    want, want_order = expected_view(astronaut, encoding)
    assert order == want_order
    np.testing.assert_array_equal(got, want)


def test_view_of_bytes_data_is_read_only_and_still_shares_memory():
    data = bytes(range(24))
    msg = SimpleNamespace(encoding='rgb8', width=2, height=4, step=6, data=data)
    got, order = image_to_array(msg)
    assert order == 'rgb' and got.shape == (4, 2, 3)
    assert np.shares_memory(got, np.frombuffer(data, np.uint8))
    assert not got.flags.writeable
    np.testing.assert_array_equal(got.reshape(-1), np.arange(24))


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_padded_rows_with_junk_give_the_same_pixels(astronaut, encoding):
    """Each row (and each NV12 plane row) is ``step`` bytes apart; the padding is never read."""
    reference = array_to_image_msg(astronaut, encoding)
    want, want_order = image_to_array(reference)
    want = np.array(want)
    height, width = astronaut.shape[:2]
    row = width * BPP[encoding]
    rows = len(reference.data) // row
    plane = data_view(reference).reshape(rows, row)
    for junk in (0x00, 0xFF, 0x5A):
        step = row + 7  # odd padding, so rows do not even stay aligned to pixels
        got, order = image_to_array(make_msg(encoding, width, height, step,
                                             pad_rows(plane, step, junk)))
        assert order == want_order
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_last_row_without_padding_and_trailing_bytes_are_accepted(encoding):
    width, height = 6, 4
    row = width * BPP[encoding]
    rows = height * 3 // 2 if encoding == 'nv12' else height
    step = row + 3
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 256, (rows, row), dtype=np.uint8)
    full = pad_rows(plane, step)
    want, _ = image_to_array(make_msg(encoding, width, height, step, full))
    short = full[:(rows - 1) * step + row]
    got, _ = image_to_array(make_msg(encoding, width, height, step, short))
    np.testing.assert_array_equal(got, want)
    got, _ = image_to_array(make_msg(encoding, width, height, step, full + b'\x01' * 100))
    np.testing.assert_array_equal(got, want)
    if encoding in EXACT:
        msg = make_msg(encoding, width, height, step, short)
        assert np.shares_memory(image_to_array(msg)[0], data_view(msg))


def test_duck_typed_messages_with_bytes_bytearray_memoryview_and_list_data():
    values = list(range(12))
    for data in (bytes(values), bytearray(values), memoryview(bytes(values)), values,
                 array.array('B', values), np.array(values, np.uint8)):
        msg = SimpleNamespace(encoding='mono8', width=3, height=4, step=3, data=data)
        got, order = image_to_array(msg)
        assert order == 'bgr' and got.shape == (4, 3)
        np.testing.assert_array_equal(got.reshape(-1), values)


def test_data_that_is_not_bytes_is_a_decode_error():
    msg = SimpleNamespace(encoding='mono8', width=2, height=1, step=2, data=[1, 'x'])
    conversion_error('decode', image_to_array, msg)


# --- errors -----------------------------------------------------------------------------------


def test_truncated_image_message():
    text = conversion_error('truncated', image_to_array,
                            make_msg('rgb8', 640, 480, 1920, bytes(1000)))
    assert text == 'truncated image: 640x480 rgb8 with step 1920 needs 921600 bytes, got 1000'


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_one_byte_short_is_truncated(encoding):
    width, height = 8, 6
    row = width * BPP[encoding]
    rows = height * 3 // 2 if encoding == 'nv12' else height
    conversion_error('truncated', image_to_array,
                     make_msg(encoding, width, height, row, bytes(rows * row - 1)))
    conversion_error('truncated', image_to_array, make_msg(encoding, width, height, row, b''))


def test_step_smaller_than_a_row():
    text = conversion_error('step', image_to_array, make_msg('rgb8', 640, 480, 100, bytes(921600)))
    assert text == 'step 100 is smaller than a row (1920 bytes) for 640x480 rgb8'


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_step_zero_or_one_short_is_a_step_error(encoding):
    row = 8 * BPP[encoding]
    for step in (0, row - 1):
        conversion_error('step', image_to_array, make_msg(encoding, 8, 4, step, bytes(1000)))


@pytest.mark.parametrize('width,height', [(0, 480), (640, 0), (0, 0)])
def test_zero_size_image(width, height):
    text = conversion_error('size', image_to_array,
                            make_msg('bgr8', width, height, width * 3, bytes(100)))
    assert text == f'zero-size image {width}x{height}'


@pytest.mark.parametrize('encoding,width,height,word', [
    ('yuyv', 641, 480, 'odd width 641 for yuyv'), ('uyvy', 3, 2, 'odd width 3 for uyvy'),
    ('yuv422', 5, 5, 'odd width 5'), ('yuv422_yuy2', 1, 1, 'odd width 1'),
    ('nv12', 641, 480, 'odd width 641 for nv12'), ('nv12', 640, 481, 'odd height 481 for nv12')])
def test_odd_sizes_for_subsampled_encodings(encoding, width, height, word):
    msg = make_msg(encoding, width, height, width * 2, bytes(width * height * 2))
    assert word in conversion_error('size', image_to_array, msg)


def test_packed_422_with_odd_height_is_fine():
    got, _ = image_to_array(make_msg('yuyv', 4, 3, 8, bytes([128]) * 24))
    assert got.shape == (3, 4, 3)


@pytest.mark.parametrize('encoding', UNSUPPORTED)
def test_unsupported_encoding(encoding):
    text = conversion_error('encoding', image_to_array, make_msg(encoding, 4, 4, 16, bytes(64)))
    assert text.startswith(f'unsupported encoding {encoding!r} (supported: rgb8, bgr8,')


def test_encoding_names_are_case_insensitive():
    got, order = image_to_array(make_msg('BGR8', 2, 1, 6, bytes(range(6))))
    assert order == 'bgr' and got.shape == (1, 2, 3)


# --- array_to_image_msg -----------------------------------------------------------------------


def test_header_is_set_and_a_given_message_is_reused_in_place(astronaut):
    header = Header(frame_id='camera_optical')
    header.stamp.sec = 42
    msg = array_to_image_msg(astronaut, 'bgr8', header=header)
    assert msg.header.frame_id == 'camera_optical' and msg.header.stamp.sec == 42
    buffer = msg.data
    flipped = np.ascontiguousarray(astronaut[::-1])
    same = array_to_image_msg(flipped, 'bgr8', msg=msg)
    assert same is msg and msg.data is buffer  # same size: bytes copied into the old buffer
    np.testing.assert_array_equal(image_to_array(msg)[0], flipped)
    assert msg.header.frame_id == 'camera_optical'  # kept when no header is given
    small = array_to_image_msg(astronaut[:10, :20], 'mono8', msg=msg)
    assert small is msg
    assert (msg.height, msg.width, msg.step, msg.encoding) == (10, 20, 20, 'mono8')
    assert len(msg.data) == 200 and isinstance(msg.data, array.array)


def test_builders_work_on_duck_typed_messages(astronaut):
    msg = SimpleNamespace(data=b'')
    assert array_to_image_msg(astronaut, 'rgb8', msg=msg) is msg
    got, order = image_to_array(msg)
    np.testing.assert_array_equal(got, astronaut[:, :, ::-1])


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_rgb_and_grey_and_four_channel_inputs(astronaut, encoding):
    from_bgr = data_view(array_to_image_msg(astronaut, encoding))
    rgb = np.ascontiguousarray(astronaut[:, :, ::-1])
    np.testing.assert_array_equal(data_view(array_to_image_msg(rgb, encoding, order='rgb')),
                                  from_bgr)
    bgra = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(data_view(array_to_image_msg(bgra, encoding)), from_bgr)
    np.testing.assert_array_equal(
        data_view(array_to_image_msg(bgra[:, :, [2, 1, 0, 3]], encoding, order='rgb')), from_bgr)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    for grey_input in (grey, grey[:, :, None]):
        got, _ = image_to_array(array_to_image_msg(grey_input, encoding))
        if got.ndim == 3:  # a grey picture comes back with equal channels (YUV: nearly)
            assert np.abs(got.astype(np.int16) - grey[:, :, None]).mean() < 3
        else:
            np.testing.assert_array_equal(got, grey)


def test_what_image_to_array_returns_can_be_sent_back(astronaut):
    for encoding in SUPPORTED_ENCODINGS:
        array_, order = image_to_array(array_to_image_msg(astronaut, encoding))
        again = array_to_image_msg(array_, 'bgr8', order=order)
        want = astronaut
        if encoding == 'mono8':
            want = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        assert np.abs(image_to_array(again)[0].astype(np.int16) - want).mean() < 3


@pytest.mark.parametrize('bad,cause', [
    (np.zeros((4, 4, 3), np.float32), 'encoding'), (np.zeros((4, 4, 2), np.uint8), 'size'),
    (np.zeros(16, np.uint8), 'size'), (np.zeros((0, 4, 3), np.uint8), 'size'),
    (np.zeros((2, 4, 4, 3), np.uint8), 'size')])
def test_bad_arrays_are_refused(bad, cause):
    conversion_error(cause, array_to_image_msg, bad, 'bgr8')


@pytest.mark.parametrize('encoding,shape', [
    ('nv12', (4, 5, 3)), ('nv12', (5, 4, 3)), ('yuyv', (4, 5, 3)), ('uyvy', (2, 3, 3))])
def test_odd_sizes_cannot_be_subsampled(encoding, shape):
    conversion_error('size', array_to_image_msg, np.zeros(shape, np.uint8), encoding)


def test_unsupported_target_encoding_and_order():
    conversion_error('encoding', array_to_image_msg, np.zeros((2, 2, 3), np.uint8), '16UC1')
    conversion_error('encoding', array_to_image_msg, np.zeros((2, 2, 3), np.uint8), 'bgr8',
                     order='hsv')


def test_non_contiguous_input_is_packed(astronaut):
    view = astronaut[::2, ::2]
    got, _ = image_to_array(array_to_image_msg(view, 'bgr8'))
    np.testing.assert_array_equal(got, view)


# --- compressed images ------------------------------------------------------------------------


def test_jpeg_round_trip(astronaut):
    header = Header(frame_id='cam')
    msg = array_to_compressed_msg(astronaut, 'jpeg', header=header, quality=95)
    assert isinstance(msg, CompressedImage)
    assert msg.format == 'bgr8; jpeg compressed bgr8' and msg.header.frame_id == 'cam'
    assert isinstance(msg.data, array.array) and bytes(msg.data[:2]) == b'\xff\xd8'
    got, order = compressed_to_array(msg)
    assert order == 'bgr' and got.shape == astronaut.shape and got.dtype == np.uint8
    assert np.abs(got.astype(np.int16) - astronaut).mean() < 3
    smaller = array_to_compressed_msg(astronaut, 'jpg', quality=30)
    assert len(smaller.data) < len(msg.data)


def test_png_round_trip_is_exact_and_grey_decodes_to_three_equal_channels(astronaut):
    msg = array_to_compressed_msg(astronaut, 'png')
    assert msg.format == 'bgr8; png compressed bgr8'
    np.testing.assert_array_equal(compressed_to_array(msg)[0], astronaut)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    msg = array_to_compressed_msg(grey, 'png')
    assert msg.format == 'mono8; png compressed mono8'
    got, order = compressed_to_array(msg)
    assert order == 'bgr' and got.shape == grey.shape + (3,)
    for channel in range(3):
        np.testing.assert_array_equal(got[:, :, channel], grey)


@pytest.mark.parametrize('fmt', ['jpeg', 'png', 'bgr8; jpeg compressed bgr8',
                                 'rgb8; png compressed', ''])
def test_compressed_from_other_publishers_decodes_whatever_the_format_says(astronaut, fmt):
    kind = '.png' if 'png' in fmt else '.jpg'
    ok, encoded = cv2.imencode(kind, astronaut)
    assert ok
    msg = CompressedImage(format=fmt)
    msg.data = array.array('B', encoded.tobytes())
    got, order = compressed_to_array(msg)
    assert order == 'bgr' and got.shape == astronaut.shape
    assert np.abs(got.astype(np.int16) - astronaut).mean() < 5


@pytest.mark.parametrize('data', [b'', b'not an image at all', b'\xff\xd8\xff\xe0' + bytes(50),
                                  b'\x89PNG\r\n\x1a\n' + bytes(40)])
def test_compressed_garbage(data):
    msg = SimpleNamespace(format='jpeg', data=data)
    conversion_error('decode', compressed_to_array, msg)


def test_truncated_jpeg_is_a_decode_error_or_a_partial_image(astronaut):
    encoded = bytes(array_to_compressed_msg(astronaut).data)
    msg = SimpleNamespace(format='jpeg', data=encoded[:200])
    conversion_error('decode', compressed_to_array, msg)


def test_compressed_depth_is_refused():
    msg = SimpleNamespace(format='16UC1; compressedDepth png', data=bytes(100))
    conversion_error('encoding', compressed_to_array, msg)


@pytest.mark.parametrize('fmt,quality', [('webp2', 90), ('tiff', 90), ('jpeg', 0),
                                         ('jpeg', 101)])
def test_compressed_builder_refuses_bad_format_or_quality(astronaut, fmt, quality):
    conversion_error('encoding', array_to_compressed_msg, astronaut, fmt, quality=quality)


# --- property tests ---------------------------------------------------------------------------


@st.composite
def image_messages(draw):
    supported = draw(st.sampled_from((True, True, True, True, False)))
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS if supported else UNSUPPORTED))
    sizes = st.one_of(st.integers(0, 64), st.integers(1, 32).map(lambda n: 2 * n))  # even: 3/4
    width = draw(sizes)
    height = draw(sizes)
    row = width * BPP.get(encoding, 2)
    step = draw(st.one_of(st.just(row), st.integers(row, row + 16), st.integers(row, row + 3),
                          st.integers(0, max(row - 1, 0)), st.integers(0, 2 ** 32 - 1)))
    rows = height + height // 2 if encoding == 'nv12' else height
    full = rows * step
    minimal = (rows - 1) * step + row if rows else 0
    length = draw(st.one_of(st.just(full), st.just(minimal), st.just(max(minimal - 1, 0)),
                            st.integers(0, min(full, 40000) + 64)))
    length = min(length, 200000)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    payload = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    kind = draw(st.sampled_from(('message', 'bytes', 'bytearray')))
    if kind == 'message':
        return make_msg(encoding, width, height, step, payload)
    data = payload if kind == 'bytes' else bytearray(payload)
    return SimpleNamespace(encoding=encoding, width=width, height=height, step=step, data=data)


def expected_failure(msg):
    """Return the cause image_to_array must fail with, or None if it must succeed."""
    encoding, width, height, step = msg.encoding, msg.width, msg.height, msg.step
    if encoding not in SUPPORTED_ENCODINGS:
        return 'encoding'
    if width == 0 or height == 0:
        return 'size'
    if (encoding in YUV and width % 2) or (encoding == 'nv12' and height % 2):
        return 'size'
    row = width * BPP[encoding]
    if step < row:
        return 'step'
    rows = height + height // 2 if encoding == 'nv12' else height
    if len(msg.data) < (rows - 1) * step + row:
        return 'truncated'
    return None


@FUZZ
@given(image_messages())
def test_image_to_array_returns_an_image_or_raises_image_conversion_error(msg):
    cause = expected_failure(msg)
    try:
        got, order = image_to_array(msg)
    except ImageConversionError as error:
        assert error.cause == cause, str(error)
        assert '\n' not in str(error)
        return
    assert cause is None
    assert order in ('rgb', 'bgr') and got.dtype == np.uint8
    shape = (msg.height, msg.width) if msg.encoding == 'mono8' else (msg.height, msg.width, 3)
    assert got.shape == shape
    if msg.encoding in EXACT:  # the pixels are the first bytes of each row
        row = msg.width * BPP[msg.encoding]
        data = bytes(msg.data)
        rows = np.array([list(data[r * msg.step:r * msg.step + row]) for r in range(msg.height)],
                        np.uint8)
        want = rows.reshape(msg.height, msg.width, -1)[:, :, :3]
        np.testing.assert_array_equal(got, want.reshape(shape))
        assert np.shares_memory(got, np.frombuffer(msg.data, np.uint8))


@st.composite
def compressed_payloads(draw):
    prefix = draw(st.sampled_from((b'', b'\xff\xd8\xff', b'\xff\xd8\xff\xe0\x00\x10JFIF\x00',
                                   b'\x89PNG\r\n\x1a\n', b'BM', b'RIFF', b'GIF89a', b'II*\x00')))
    return prefix + draw(st.binary(max_size=2048))


@FUZZ
@given(compressed_payloads(), st.sampled_from(('jpeg', 'png', 'bgr8; jpeg compressed bgr8', '')))
def test_random_compressed_bytes_raise_only_image_conversion_error(data, fmt):
    msg = SimpleNamespace(format=fmt, data=data)
    try:
        got, order = compressed_to_array(msg)
    except ImageConversionError as error:
        assert error.cause == 'decode' and '\n' not in str(error)
        return
    assert order == 'bgr' and got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == 3


@FUZZ
@given(st.sampled_from(SUPPORTED_ENCODINGS), st.integers(1, 24), st.integers(1, 24),
       st.integers(0, 2 ** 32 - 1))
def test_any_bgr_array_round_trips_through_every_encoding(encoding, width, height, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    try:
        msg = array_to_image_msg(image, encoding)
    except ImageConversionError as error:
        assert error.cause == 'size' and encoding in YUV
        assert width % 2 or (encoding == 'nv12' and height % 2)
        return
    got, order = image_to_array(msg)
    assert got.shape == ((height, width) if encoding == 'mono8' else (height, width, 3))
    if encoding in EXACT:
        want, want_order = expected_view(image, encoding)
        assert order == want_order
        np.testing.assert_array_equal(got, want)


# --- imports ----------------------------------------------------------------------------------


def test_module_imports_only_numpy_opencv_and_message_types():
    path = os.path.join(REPO, 'hobot_npu_infer', 'ros', 'image_conversion.py')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add('.' * node.level + (node.module or ''))
    assert modules <= {'array', 'dataclasses', 'typing', 'cv2', 'numpy',
                       'hobot_npu_infer.core.errors', 'hobot_npu_infer.core.imaging.nv12',
                       'hobot_npu_infer.core.imaging.image_headers', 'sensor_msgs.msg'}


def test_readers_work_with_ros_unimportable():
    code = BLOCK_ROS + (
        'from types import SimpleNamespace\n'
        'from hobot_npu_infer.ros.image_conversion import image_to_array, array_to_image_msg\n'
        'msg = SimpleNamespace(data=b"")\n'
        'import numpy as np\n'
        'array_to_image_msg(np.zeros((4, 6, 3), np.uint8), "nv12", msg=msg)\n'
        'image, order = image_to_array(msg)\n'
        'print(image.shape, order)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '(4, 6, 3) bgr'


# --- limits, judged from what a frame declares ------------------------------------------------

LIMITS = ic.InputLimits(max_pixels=1920 * 1080, max_compressed_bytes=1 << 20)


def test_a_frame_within_the_limits_passes_and_one_over_is_refused_before_conversion():
    ic.check_limits(make_msg('bgr8', 1920, 1080, 1920 * 3, bytes(1920 * 1080 * 3)), LIMITS)
    # 8K declared: refused from the header alone, however little data it carries
    msg = SimpleNamespace(encoding='bgr8', width=7680, height=4320, step=7680 * 3, data=b'')
    assert conversion_error('too_large', ic.check_limits, msg, LIMITS) == (
        '7680x4320 image (33177600 pixels) is over max_input_pixels 2073600')
    msg = SimpleNamespace(encoding='mono8', width=10, height=10, step=10,
                          data=bytes(1920 * 1080 * 4 + 1))  # small, with a huge payload
    assert 'over 4 x max_input_pixels' in conversion_error('too_large', ic.check_limits, msg,
                                                           LIMITS)


def bomb(ext: str, width: int, height: int) -> bytes:
    """Return a small real image whose header declares ``width`` x ``height``."""
    ok, data = cv2.imencode(ext, np.zeros((48, 64, 3), np.uint8))
    data = data.tobytes()
    if ext == '.png':
        return data[:16] + width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + data[24:]
    sof = data.index(b'\xff\xc0')
    return data[:sof + 5] + height.to_bytes(2, 'big') + width.to_bytes(2, 'big') + \
        data[sof + 9:]


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_a_decompression_bomb_is_refused_before_decoding(ext, monkeypatch):
    def no_decoding(*_):
        raise AssertionError('decoded')
    monkeypatch.setattr(cv2, 'imdecode', no_decoding)
    msg = CompressedImage(format=ext[1:])
    msg.data = array.array('B', bomb(ext, 20000, 20000))
    text = conversion_error('too_large', ic.check_limits, msg, LIMITS)
    assert text.endswith('declares 20000x20000 (400000000 pixels), over max_input_pixels '
                         '2073600: refused before decoding')


def test_compressed_bytes_over_the_limit_and_unknown_formats_are_refused():
    msg = CompressedImage(format='jpeg')
    msg.data = array.array('B', b'\xff\xd8' + bytes(1 << 20))
    assert conversion_error('too_large', ic.check_limits, msg, LIMITS) == (
        f'compressed image of {(1 << 20) + 2} bytes is over max_compressed_bytes {1 << 20}')
    msg.data = array.array('B', b'GIF89a' + bytes(100))
    assert 'not a JPEG or PNG' in conversion_error('decode', ic.check_limits, msg, LIMITS)
    ok, data = cv2.imencode('.jpg', np.zeros((1080, 1920, 3), np.uint8))
    msg.data = array.array('B', data.tobytes())
    ic.check_limits(msg, LIMITS)  # a real 1080p JPEG passes
