"""
sensor_msgs images to numpy arrays for inference and back, with numpy and OpenCV only.

No cv_bridge. Incoming images are read through ``np.frombuffer`` as strided views that respect
``step`` (padded rows): rgb8, bgr8, rgba8, bgra8 and mono8 cost no copy at all, and the channel
order returned is whichever one needs no copy. YUV encodings are converted to BGR by OpenCV.

The readers are duck-typed: any object with the message's attributes works (``height``,
``width``, ``encoding``, ``step``, ``data``; ``format`` and ``data`` for compressed images), so
they are testable without ROS. Only the builders import ``sensor_msgs``, and only when they are
not handed a message to fill.

Outgoing data is assigned as an ``array.array('B')``: on ROS 2 Humble the generated setter of a
``uint8[]`` field checks every element in Python unless it is given an ``array.array``
(about 130 ms for a 640x480 bgr8 frame given ``bytes``, 0.05 ms given an ``array.array``), and
assigning a numpy array is slow on every distribution.
"""

import array
from dataclasses import dataclass
from typing import Any, Tuple

import cv2
from hobot_npu_infer.core.errors import ImageError, one_line
from hobot_npu_infer.core.imaging.image_headers import declared_size, HeaderError
from hobot_npu_infer.core.imaging.nv12 import bgr_to_nv12, nv12_to_bgr
import numpy as np

SUPPORTED_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8',
                       'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv', 'nv12')

# The keys of ImageConversionError.cause, for per-cause error counters in diagnostics.
ERROR_CAUSES = ('encoding', 'size', 'step', 'truncated', 'decode', 'too_large')

# encoding -> bytes per pixel in a row of the (first) plane
_BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1,
                    'yuv422': 2, 'uyvy': 2, 'yuv422_yuy2': 2, 'yuyv': 2, 'nv12': 1}
_UYVY = ('yuv422', 'uyvy')  # ROS's 'yuv422' is UYVY byte order
_YUYV = ('yuv422_yuy2', 'yuyv')
_PACKED_422 = _UYVY + _YUYV
_COMPRESSED_FORMATS = {'jpeg': '.jpg', 'jpg': '.jpg', 'png': '.png'}

# BT.601 limited range ("video range"), the convention of OpenCV's YUV<->BGR codes for
# YUY2/UYVY/NV12/I420, as an affine map of (B, G, R, 1) to (Y, U, V).
_BGR_TO_YUV_BT601_LIMITED = np.array([[0.098, 0.504, 0.257, 16.0],
                                      [0.439, -0.291, -0.148, 128.0],
                                      [-0.071, -0.368, 0.439, 128.0]], np.float32)


class ImageConversionError(ImageError):
    """An image message cannot be converted; ``cause`` is one of ``ERROR_CAUSES``."""

    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class InputLimits:
    """The most one frame may cost: pixels (raw or as a JPEG/PNG declares) and compressed bytes."""

    max_pixels: int
    max_compressed_bytes: int


# ---------------------------------------------------------------------------------------------
# Limits, checked on arrival from what a message declares: nothing is converted or decoded


def check_limits(msg: Any, limits: InputLimits) -> None:
    """
    Refuse a frame that would cost more than ``limits``, before any conversion or decoding.

    An Image is judged by its ``width`` x ``height`` and its data's length; a CompressedImage
    by its length and by the size its JPEG or PNG header declares (a decompression bomb
    declares a huge size in a few bytes). Raises ImageConversionError, cause 'too_large'
    (or 'decode' for compressed data whose header cannot be read).
    """
    if hasattr(msg, 'encoding'):
        pixels = int(msg.width) * int(msg.height)
        if pixels > limits.max_pixels:
            raise ImageConversionError(
                f'{msg.width}x{msg.height} image ({pixels} pixels) is over max_input_pixels '
                f'{limits.max_pixels}', 'too_large')
        if len(msg.data) > limits.max_pixels * 4:  # 4: the most bytes a pixel takes
            raise ImageConversionError(
                f'{msg.width}x{msg.height} image carries {len(msg.data)} bytes, over 4 x '
                f'max_input_pixels ({limits.max_pixels * 4})', 'too_large')
        return
    size = len(msg.data)
    if size > limits.max_compressed_bytes:
        raise ImageConversionError(
            f'compressed image of {size} bytes is over max_compressed_bytes '
            f'{limits.max_compressed_bytes}', 'too_large')
    if size == 0:
        return  # the decoder names it
    try:
        fmt, width, height = declared_size(msg.data)
    except HeaderError as exc:
        raise ImageConversionError(f'compressed image ({size} bytes): {exc}', 'decode') from None
    if width * height > limits.max_pixels:
        raise ImageConversionError(
            f'{fmt} of {size} bytes declares {width}x{height} ({width * height} pixels), over '
            f'max_input_pixels {limits.max_pixels}: refused before decoding', 'too_large')


# ---------------------------------------------------------------------------------------------
# Messages to arrays


def image_to_array(msg: Any, keep_nv12: bool = False) -> Tuple[np.ndarray, str]:
    """
    Convert a sensor_msgs/Image to a uint8 array and its channel order ('rgb', 'bgr' or 'nv12').

    rgb8, bgr8, rgba8, bgra8 and mono8 give a view of ``msg.data`` (no copy; read-only if the
    data is ``bytes``): HxWx3 in the message's own order, the first three channels of 4-channel
    images, HxW for mono8 (order 'bgr'). yuv422/uyvy, yuv422_yuy2/yuyv and nv12 are converted
    to a new HxWx3 BGR array; with ``keep_nv12`` (for a model that takes NV12) nv12 is instead
    a (H*3/2)xW view in order 'nv12', which the pre-processor copies untouched.

    Rows are ``msg.step`` bytes apart; padding after each row is skipped, bytes after the last
    row are ignored and the last row may lack its padding. Raises ImageConversionError.
    """
    encoding = _encoding_of(msg)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, encoding)
    row_bytes = width * _BYTES_PER_PIXEL[encoding]
    rows = height + height // 2 if encoding == 'nv12' else height
    what = f'{width}x{height} {encoding}'
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than a row ({row_bytes} bytes) for {what}', 'step')
    buf = _byte_buffer(msg.data, what)
    needed = (rows - 1) * step + row_bytes
    if buf.size < needed:
        raise ImageConversionError(
            f'truncated image: {what} with step {step} needs {needed} bytes, got {buf.size}',
            'truncated')
    plane = _rows_view(buf, rows, row_bytes, step)

    if encoding in ('rgb8', 'bgr8'):
        return plane.reshape(height, width, 3), encoding[:3]
    if encoding in ('rgba8', 'bgra8'):
        return plane.reshape(height, width, 4)[:, :, :3], encoding[:3]
    if encoding == 'mono8':
        return plane, 'bgr'
    if encoding in _UYVY:
        code, plane = cv2.COLOR_YUV2BGR_UYVY, plane.reshape(height, width, 2)
    elif encoding in _YUYV:
        code, plane = cv2.COLOR_YUV2BGR_YUY2, plane.reshape(height, width, 2)
    else:  # nv12: Y plane of H rows, then interleaved UV plane of H/2 rows, same step
        if keep_nv12:
            return plane, 'nv12'
        code = None  # core.nv12 decodes it
    try:
        return (nv12_to_bgr(plane) if code is None else cv2.cvtColor(plane, code)), 'bgr'
    except cv2.error as exc:  # not expected after the checks above; keep it one line
        raise ImageConversionError(
            f'cannot convert {what} to BGR: {_cause(exc)}', 'decode') from None


def compressed_to_array(msg: Any) -> Tuple[np.ndarray, str]:
    """
    Decode a sensor_msgs/CompressedImage (JPEG, PNG, ...) to an HxWx3 BGR array: (array, 'bgr').

    ``msg.format`` ('jpeg', 'png', 'bgr8; jpeg compressed bgr8', ...) is informative only: the
    decoder reads the data's own signature. Grey images decode to 3 equal channels.
    compressedDepth images (16-bit depth with a private header) are not supported.
    """
    fmt = str(getattr(msg, 'format', '') or '')
    if 'compresseddepth' in fmt.lower().replace(' ', ''):
        raise ImageConversionError(
            f'unsupported compressed format {fmt!r} (depth images are not supported)',
            'encoding')
    label = f'format {fmt!r}' if fmt else 'no format'
    buf = _byte_buffer(msg.data, f'compressed image ({label})')
    if buf.size == 0:
        raise ImageConversionError(f'empty compressed image ({label}, 0 bytes)', 'decode')
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageConversionError(
            f'cannot decode compressed image ({label}, {buf.size} bytes): {_cause(exc)}',
            'decode') from None
    if image is None or image.size == 0:
        raise ImageConversionError(
            f'cannot decode compressed image ({label}, {buf.size} bytes): '
            'not a JPEG, PNG or other image OpenCV can read', 'decode')
    return image, 'bgr'


# ---------------------------------------------------------------------------------------------
# Arrays to messages


def array_to_image_msg(array_: np.ndarray, encoding: str, header: Any = None, msg: Any = None,
                       *, order: str = 'bgr') -> Any:
    """
    Build a sensor_msgs/Image of ``encoding`` holding a uint8 image.

    ``array_`` is HxW grey, or HxWx3 / HxWx4 colour in channel ``order`` ('bgr' by default,
    'rgb' to pass back what image_to_array returned), converted to any of SUPPORTED_ENCODINGS.
    nv12 needs an even width and height, the packed 4:2:2 encodings an even width. If ``msg``
    is given it is filled and returned (its data buffer is overwritten in place when the size
    matches), else a new sensor_msgs.msg.Image is made.
    """
    enc = _normalise_encoding(encoding)
    image = _check_input_array(array_, order)
    height, width = image.shape[:2]
    _check_size(width, height, enc)
    out = _convert_for_encoding(image, order, enc)
    if msg is None:
        from sensor_msgs.msg import Image
        msg = Image()
    if header is not None:
        msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = enc
    msg.is_bigendian = 0
    msg.step = width * _BYTES_PER_PIXEL[enc]
    _set_data(msg, out)
    return msg


def array_to_compressed_msg(array_bgr: np.ndarray, fmt: str = 'jpeg', header: Any = None,
                            quality: int = 90) -> Any:
    """
    Encode a BGR (or grey) uint8 image as a sensor_msgs/CompressedImage, 'jpeg' or 'png'.

    ``format`` follows compressed_image_transport: 'bgr8; jpeg compressed bgr8' (or mono8 for
    grey), so image_transport subscribers decode it. ``quality`` (1..100) applies to JPEG.
    """
    kind = str(fmt).strip().lower()
    if kind not in _COMPRESSED_FORMATS:
        raise ImageConversionError(
            f'unsupported compressed format {fmt!r} (supported: jpeg, png)', 'encoding')
    if not 1 <= int(quality) <= 100:
        raise ImageConversionError(f'JPEG quality {quality} is outside 1..100', 'encoding')
    image = _check_input_array(array_bgr, 'bgr')
    height, width = image.shape[:2]
    _check_size(width, height, kind)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    encoding = 'mono8' if image.ndim == 2 else 'bgr8'
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    kind = 'jpeg' if kind == 'jpg' else kind
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if kind == 'jpeg' else []
    try:
        ok, encoded = cv2.imencode(_COMPRESSED_FORMATS[kind], image, params)
        reason = 'the encoder failed'
    except cv2.error as exc:
        ok, reason = False, _cause(exc)
    if not ok:
        raise ImageConversionError(
            f'cannot encode {width}x{height} {encoding} image as {kind}: {reason}', 'decode')
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = f'{encoding}; {kind} compressed {encoding}'
    _set_data(msg, encoded)
    return msg


# ---------------------------------------------------------------------------------------------
# Helpers


def _normalise_encoding(encoding: Any) -> str:
    enc = str(encoding).strip().lower()
    if enc not in _BYTES_PER_PIXEL:
        raise ImageConversionError(
            f'unsupported encoding {str(encoding)!r} '
            f'(supported: {", ".join(SUPPORTED_ENCODINGS)})',
            'encoding')
    return enc


def _encoding_of(msg: Any) -> str:
    return _normalise_encoding(getattr(msg, 'encoding', ''))


def _check_size(width: int, height: int, encoding: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageConversionError(f'zero-size image {width}x{height}', 'size')
    if encoding in _PACKED_422 or encoding == 'nv12':
        if width % 2:
            raise ImageConversionError(
                f'odd width {width} for {encoding} ({width}x{height})', 'size')
        if encoding == 'nv12' and height % 2:
            raise ImageConversionError(
                f'odd height {height} for {encoding} ({width}x{height})', 'size')


def _byte_buffer(data: Any, what: str) -> np.ndarray:
    """Get ``data`` (array.array, bytes, bytearray, memoryview, ndarray or list) as 1-D uint8."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8:
        return data.reshape(-1)
    try:
        if len(data) == 0:
            return np.empty(0, np.uint8)
        return np.frombuffer(data, np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    try:  # a list of ints and the like: one copy
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ImageConversionError(
            f'{what}: data of type {type(data).__name__} is not a sequence of bytes',
            'decode') from None


def _rows_view(buf: np.ndarray, rows: int, row_bytes: int, step: int) -> np.ndarray:
    """
    ``rows`` rows of ``row_bytes`` bytes, ``step`` bytes apart, as a (rows, row_bytes) view.

    The caller has checked ``buf.size >= (rows - 1) * step + row_bytes``.
    """
    if buf.size >= rows * step:
        return buf[:rows * step].reshape(rows, step)[:, :row_bytes]
    # The last row lacks its padding: a strided view within the checked bounds.
    return np.lib.stride_tricks.as_strided(buf, shape=(rows, row_bytes), strides=(step, 1))


def _check_input_array(image: Any, order: str) -> np.ndarray:
    if order not in ('bgr', 'rgb'):
        raise ImageConversionError(f"channel order must be 'bgr' or 'rgb', got {order!r}",
                                   'encoding')
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageConversionError(f'image array has dtype {image.dtype}, expected uint8',
                                   'encoding')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ImageConversionError(
            f'image array of shape {image.shape} is not HxW, HxWx3 or HxWx4', 'size')
    return image


_TO_BGR = {('bgr', 3): None, ('rgb', 3): cv2.COLOR_RGB2BGR,
           ('bgr', 4): cv2.COLOR_BGRA2BGR, ('rgb', 4): cv2.COLOR_RGBA2BGR}


def _as_bgr(image: np.ndarray, order: str) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    code = _TO_BGR[(order, image.shape[2])]
    return image if code is None else cv2.cvtColor(image, code)


def _convert_for_encoding(image: np.ndarray, order: str, enc: str) -> np.ndarray:
    """``image`` (grey, or 3/4 channels in ``order``) laid out as ``enc`` wants, contiguous."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if enc == 'mono8':
        if channels == 1:
            return image
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if order == 'bgr' else cv2.COLOR_RGB2GRAY)
    if enc in ('rgb8', 'bgr8'):
        if channels == 3 and order == enc[:3]:
            return image
        if channels == 1:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # equal channels: order is moot
        return _as_bgr(image, order) if enc == 'bgr8' else cv2.cvtColor(
            _as_bgr(image, order), cv2.COLOR_BGR2RGB)
    if enc in ('rgba8', 'bgra8'):
        if channels == 4 and order == enc[:3]:
            return image
        return cv2.cvtColor(_as_bgr(image, order),
                            cv2.COLOR_BGR2BGRA if enc == 'bgra8' else cv2.COLOR_BGR2RGBA)
    bgr = _as_bgr(image, order)
    if enc == 'nv12':
        return bgr_to_nv12(bgr)
    return _bgr_to_packed_422(bgr, uyvy=enc in _UYVY)


def _bgr_to_packed_422(bgr: np.ndarray, uyvy: bool) -> np.ndarray:
    """BGR (even width) to packed 4:2:2, HxWx2: YUYV byte order, or UYVY if ``uyvy``."""
    code = getattr(cv2, 'COLOR_BGR2YUV_UYVY' if uyvy else 'COLOR_BGR2YUV_YUY2', None)
    if code is not None:  # OpenCV 4.8 and later
        return cv2.cvtColor(bgr, code)
    return _bgr_to_packed_422_numpy(bgr, uyvy)


def _bgr_to_packed_422_numpy(bgr: np.ndarray, uyvy: bool) -> np.ndarray:
    """Do the same for older OpenCV: BT.601 limited range, chroma averaged over pixel pairs."""
    height, width = bgr.shape[:2]
    yuv = cv2.transform(bgr, _BGR_TO_YUV_BT601_LIMITED)  # uint8 HxWx3, rounded and saturated
    pairs = yuv[:, :, 1:].reshape(height, width // 2, 2, 2).astype(np.uint16)
    chroma = ((pairs[:, :, 0] + pairs[:, :, 1] + 1) >> 1).astype(np.uint8)  # H x W/2 x (U, V)
    out = np.empty((height, width, 2), np.uint8)
    luma, packed = (1, 0) if uyvy else (0, 1)
    out[:, :, luma] = yuv[:, :, 0]
    out.reshape(height, width // 2, 2, 2)[:, :, :, packed] = chroma  # U on even, V on odd pixels
    return out


def _set_data(msg: Any, out: np.ndarray) -> None:
    """Put ``out``'s bytes in ``msg.data`` as an array.array('B'), in place if sizes match."""
    flat = np.ascontiguousarray(out).reshape(-1)
    old = getattr(msg, 'data', None)
    if isinstance(old, array.array) and old.typecode == 'B' and len(old) == flat.size:
        np.frombuffer(old, np.uint8)[:] = flat
        return
    data = array.array('B')
    data.frombytes(flat)
    msg.data = data


def _cause(exc: BaseException) -> str:
    """
    Return an OpenCV error on one line.

    Its messages carry a traceback, the cause on the last line.
    """
    return one_line(exc, named=False, last=True, limit=None)
