"""Images read from their serialized bytes against rclpy's own deserialisation (the judge)."""

import struct

from builtin_interfaces.msg import Time
from hobot_npu_infer.ros.image_conversion import image_to_array
from hobot_npu_infer.ros.serialized_images import (
    CompressedImageView,
    ImageView,
    read_compressed,
    read_image,
)
from hypothesis import given, settings, strategies as st
import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=13)


@settings(max_examples=200, deadline=None)
@given(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(0, 2 ** 32 - 1), texts,
       st.integers(0, 9), st.integers(0, 9), texts, st.integers(0, 1), st.integers(0, 40),
       st.binary(max_size=97))
def test_an_image_reads_as_rclpy_deserialises_it(sec, nanosec, frame_id, height, width,
                                                 encoding, bigendian, step, data):
    msg = Image(header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id),
                height=height, width=width, encoding=encoding, is_bigendian=bigendian,
                step=step)
    msg.data = data
    view = read_image(serialize_message(msg))
    assert isinstance(view, ImageView)
    assert view.header == msg.header
    assert (view.height, view.width, view.encoding, view.is_bigendian, view.step) == \
        (height, width, encoding, bigendian, step)
    assert bytes(view.data) == data


@settings(max_examples=200, deadline=None)
@given(st.integers(-2 ** 31, 2 ** 31 - 1), texts, texts, st.binary(max_size=97))
def test_a_compressed_image_reads_as_rclpy_deserialises_it(sec, frame_id, fmt, data):
    msg = CompressedImage(header=Header(stamp=Time(sec=sec, nanosec=7), frame_id=frame_id),
                          format=fmt)
    msg.data = data
    view = read_compressed(serialize_message(msg))
    assert isinstance(view, CompressedImageView)
    assert (view.header, view.format, bytes(view.data)) == (msg.header, fmt, data)


def test_the_pixels_are_a_view_of_the_received_bytes_not_a_copy():
    image = np.arange(48 * 64 * 3, dtype=np.uint32).astype(np.uint8).reshape(48, 64, 3)
    msg = Image(height=48, width=64, encoding='bgr8', step=64 * 3)
    msg.data = image.tobytes()
    raw = serialize_message(msg)
    got, order = image_to_array(read_image(raw))
    np.testing.assert_array_equal(got, image)
    assert order == 'bgr' and np.shares_memory(got, np.frombuffer(raw, np.uint8))


def test_big_endian_cdr_is_read_too():
    def string(text):
        encoded = text.encode() + b'\0'
        return struct.pack('>I', len(encoded)) + encoded

    body = struct.pack('>iI', 5, 6) + string('cam')  # header: stamp, frame_id (4 + 4 bytes)
    body += b'\0' * (-len(body) % 4) + struct.pack('>II', 2, 1) + string('mono8')
    body += b'\1' + b'\0' * (-(len(body) + 1) % 4) + struct.pack('>I', 2)
    body += struct.pack('>I', 2) + b'\x07\x08'
    view = read_image(b'\0\0\0\0' + body)
    assert (view.header.stamp.sec, view.header.stamp.nanosec, view.header.frame_id) == \
        (5, 6, 'cam')
    assert (view.height, view.width, view.encoding, view.is_bigendian, view.step) == \
        (2, 1, 'mono8', 1, 2)
    assert bytes(view.data) == b'\x07\x08'


def test_another_encapsulation_goes_through_rclpys_deserialisation():
    msg = Image(height=1, width=1, encoding='mono8', step=1)
    msg.data = b'\x05'
    raw = bytearray(serialize_message(msg))
    raw[1] = 0x07  # not plain CDR: read by rclpy, which ignores the representation id
    got = read_image(bytes(raw))
    assert isinstance(got, Image) and bytes(got.data) == b'\x05'
