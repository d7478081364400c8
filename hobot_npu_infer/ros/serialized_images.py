"""
sensor_msgs Image and CompressedImage read straight from their serialized (CDR) bytes.

rclpy's deserialisation of an image copies its pixels twice, into a C message and then into a
Python array, holding the GIL throughout: 0.25 s for one 8K bgr8 frame, during which no other
input's frame moves. Taken serialized (``input_reader``), a message arrives as one buffer (bytes
or a uint8 array); this module reads its header fields and gives the pixels as a view into that
buffer: nothing is copied, and a frame over the limits is refused having cost one copy. What it
cannot read (an encoding other than XCDR1 from another RMW) goes through rclpy's
deserialisation instead, so the result is the same message either way. TROS's hbm_img_msgs
images (fixed-size arrays, no header) are read the same way.
"""

from dataclasses import dataclass
import importlib
import struct
from typing import Union

from builtin_interfaces.msg import Time
import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

Buffer = Union[bytes, np.ndarray]  # a serialized message

# The 4-byte encapsulation header: representation id (big-endian), then options.
CDR_BE, CDR_LE = 0x0000, 0x0001


@dataclass
class ImageView:
    """A sensor_msgs/Image whose ``data`` is a view of the bytes it was read from."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


@dataclass
class CompressedImageView:
    """A sensor_msgs/CompressedImage whose ``data`` is a view of the bytes it was read from."""

    header: Header
    format: str  # noqa: A003 (the message's own field name)
    data: memoryview


class _Reader:
    """Sequential CDR reads, aligned relative to the end of the encapsulation header."""

    def __init__(self, raw: Buffer):
        self.view = memoryview(raw)
        kind = struct.unpack_from('>H', raw, 0)[0]
        if kind not in (CDR_BE, CDR_LE):
            raise ValueError(f'encapsulation {kind:#06x} is not plain CDR')
        self.order = '<' if kind == CDR_LE else '>'
        self.pos = 4

    def _align(self, size: int) -> None:
        self.pos += -(self.pos - 4) % size

    def _word(self, code: str) -> int:
        self._align(4)
        value = struct.unpack_from(self.order + code, self.view, self.pos)[0]
        self.pos += 4
        return value

    def uint32(self) -> int:
        return self._word('I')

    def int32(self) -> int:
        return self._word('i')

    def uint8(self) -> int:
        value = self.view[self.pos]
        self.pos += 1
        return value

    def string(self) -> str:
        length = self.uint32()  # with the terminating NUL
        end = self.pos + length
        if length == 0 or end > len(self.view):
            raise ValueError('string runs past the message')
        text = bytes(self.view[self.pos:end - 1]).decode('utf-8', 'replace')
        self.pos = end
        return text

    def octets(self) -> memoryview:
        length = self.uint32()
        end = self.pos + length
        if end > len(self.view):
            raise ValueError('data runs past the message')
        data = self.view[self.pos:end]
        self.pos = end
        return data

    def header(self) -> Header:
        sec, nanosec = self.int32(), self.uint32()
        return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=self.string())


def read_image(raw: Buffer) -> Union[ImageView, Image]:
    """Read a serialized sensor_msgs/Image: a view of ``raw``, or the deserialised message."""
    try:
        reader = _Reader(raw)
        header = reader.header()
        height, width = reader.uint32(), reader.uint32()
        encoding = reader.string()
        is_bigendian = reader.uint8()
        step = reader.uint32()
        return ImageView(header, height, width, encoding, is_bigendian, step, reader.octets())
    except (ValueError, struct.error, IndexError):
        return deserialize_message(bytes(raw), Image)


def read_compressed(raw: Buffer) -> Union[CompressedImageView, CompressedImage]:
    """Read a serialized sensor_msgs/CompressedImage: a view of ``raw``, or the message."""
    try:
        reader = _Reader(raw)
        header = reader.header()
        fmt = reader.string()
        return CompressedImageView(header, fmt, reader.octets())
    except (ValueError, struct.error, IndexError):
        return deserialize_message(bytes(raw), CompressedImage)


def read_hbm_image(raw: Buffer, frame_id: str = '') -> ImageView:
    """
    Read a serialized TROS hbm_img_msgs image (HbmMsg1080P, HbmMsg540P, HbmMsg480P).

    Its fields: int32 index, builtin_interfaces/Time time_stamp, uint32 height, width,
    data_size, step, uint8[12] encoding (NUL-padded), uint8[N] data: fixed arrays, so no
    length precedes them, and only ``data_size`` bytes of ``data`` are the image. The
    message has no header: the stamp is its ``time_stamp``, the frame_id the input's.
    """
    try:
        reader = _Reader(raw)
        reader.int32()  # index: the camera's frame counter
        sec, nanosec = reader.int32(), reader.uint32()
        height, width, data_size, step = (reader.uint32() for _ in range(4))
        encoding = bytes(reader.view[reader.pos:reader.pos + 12]).split(b'\0', 1)[0]
        start = reader.pos + 12
    except (struct.error, IndexError) as exc:
        raise ValueError(f'hbm image message too short ({len(raw)} bytes)') from exc
    if start + data_size > len(reader.view):
        raise ValueError(f'hbm image data_size {data_size} runs past the message '
                         f'({len(raw)} bytes)')
    encoding_name = encoding.decode('ascii', 'replace')
    if encoding_name != 'nv12' and height and data_size // height > step:
        step = data_size // height  # hobot_codec leaves step = width on bgr8 frames
    header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
    return ImageView(header, height, width, encoding_name, 0, step,
                     reader.view[start:start + data_size])


def hbm_message_type(name: str):
    """Return the hbm_img_msgs message class ``name``; ImportError off a TROS board."""
    return getattr(importlib.import_module('hbm_img_msgs.msg'), name)


HBM_MESSAGES = ('HbmMsg1080P', 'HbmMsg540P', 'HbmMsg480P')  # the fixed-size image messages
