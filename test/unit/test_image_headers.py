"""The size a JPEG or PNG declares, read from its header, against what OpenCV decodes."""

import struct

import cv2
from hobot_npu_infer.core.imaging.image_headers import declared_size, HeaderError
import numpy as np
import pytest


def encoded(width, height, ext='.jpg', params=()):
    image = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize('ext,params', [
    ('.jpg', ()), ('.jpg', (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    ('.jpg', (cv2.IMWRITE_JPEG_OPTIMIZE, 1)), ('.png', ()),
    ('.png', (cv2.IMWRITE_PNG_COMPRESSION, 9))])
@pytest.mark.parametrize('width,height', [(1, 1), (64, 48), (641, 479), (1920, 1080)])
def test_the_declared_size_is_the_decoded_size(ext, params, width, height):
    data = encoded(width, height, ext, params)
    fmt, w, h = declared_size(data)
    assert fmt == ('png' if ext == '.png' else 'jpeg')
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert (w, h) == (decoded.shape[1], decoded.shape[0]) == (width, height)


def with_exif(jpeg: bytes, size: int) -> bytes:
    """Insert an APP1 segment of ``size`` bytes (EXIF, a thumbnail) before the frame header."""
    segment = b'\xff\xe1' + struct.pack('>H', size + 2) + b'Exif\x00\x00' + bytes(size - 6)
    return jpeg[:2] + segment + jpeg[2:]


def test_segments_before_the_frame_header_are_skipped():
    data = with_exif(encoded(320, 240), 30000)
    assert declared_size(data) == ('jpeg', 320, 240)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


def declaring(data: bytes, width: int, height: int) -> bytes:
    """Return ``data`` with its header declaring another size: a decompression bomb's trick."""
    if data[:4] == b'\x89PNG':
        return data[:16] + struct.pack('>II', width, height) + data[24:]
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    return data[:sof + 5] + struct.pack('>HH', height, width) + data[sof + 9:]


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_a_bomb_is_known_by_its_header_alone(ext):
    data = declaring(encoded(64, 48, ext), 20000, 20000)
    assert declared_size(data)[1:] == (20000, 20000)
    assert declared_size(data[:200 if ext == '.jpg' else 24])[1:] == (20000, 20000)


@pytest.mark.parametrize('data,what', [
    (b'', 'not a JPEG or PNG'), (b'GIF89a' + bytes(20), 'not a JPEG or PNG'),
    (b'BM' + bytes(60), 'not a JPEG or PNG'), (b'\x89PNG\r\n\x1a\n' + bytes(8), 'IHDR'),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF', 'frame header'), (b'\xff\xd8\x00\x00\x00\x00', 'marker'),
    (b'\xff\xd8\xff\xda\x00\x08' + bytes(20), 'frame header')])
def test_what_has_no_readable_size_is_refused_with_a_reason(data, what):
    with pytest.raises(HeaderError, match=what):
        declared_size(data)


def test_a_header_cut_short_is_refused():
    data = encoded(64, 48)
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    with pytest.raises(HeaderError):
        declared_size(data[:sof + 6])
