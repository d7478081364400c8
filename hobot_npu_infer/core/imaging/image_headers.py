"""
The size a JPEG or PNG declares in its header, read before any decoding.

A compressed frame's cost is set by the pixels it declares, not by its bytes: a 6 MB JPEG may
declare 20000x20000 and take gigabytes to decode (a decompression bomb). Reading the header is
a few hundred bytes of parsing, so an input can be refused before the decoder is ever called.
"""

import struct
from typing import Optional, Tuple

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SOI = b'\xff\xd8'
# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
# C4 (DHT), C8 (reserved) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}  # RSTn, TEM, SOI: no length
_JPEG_SOS = 0xDA  # entropy-coded data follows; no frame header before it is a broken file


class HeaderError(ValueError):
    """The data is not a JPEG or PNG whose size can be read."""


def image_format(data: bytes) -> Optional[str]:
    """Return 'jpeg' or 'png' from the data's signature, or None."""
    if data[:8] == PNG_SIGNATURE:
        return 'png'
    if data[:2] == JPEG_SOI:
        return 'jpeg'
    return None


def declared_size(data: bytes) -> Tuple[str, int, int]:
    """
    Return ``(format, width, height)`` as the header of a JPEG or PNG declares them.

    ``data`` is the whole compressed image (any bytes-like object); only its header is read.
    Raises HeaderError for another format or a header cut short.
    """
    view = memoryview(data).cast('B')
    fmt = image_format(bytes(view[:8]))
    if fmt == 'png':
        return (fmt,) + _png_size(view)
    if fmt == 'jpeg':
        return (fmt,) + _jpeg_size(view)
    raise HeaderError('not a JPEG or PNG (no JPEG or PNG signature)')


def _png_size(view: memoryview) -> Tuple[int, int]:
    # the signature, then the IHDR chunk: length, 'IHDR', width, height (big-endian)
    if len(view) < 24 or bytes(view[12:16]) != b'IHDR':
        raise HeaderError('PNG without an IHDR chunk')
    width, height = struct.unpack('>II', view[16:24])
    return width, height


def _jpeg_size(view: memoryview) -> Tuple[int, int]:
    i, n = 2, len(view)
    while i + 4 <= n:
        if view[i] != 0xFF:
            raise HeaderError(f'JPEG marker expected at byte {i}')
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == _JPEG_SOS:
            break
        length = struct.unpack('>H', view[i + 2:i + 4])[0]
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack('>HH', view[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise HeaderError('JPEG without a frame header (SOF) before its image data')
