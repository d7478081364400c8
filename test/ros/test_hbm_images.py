"""
TROS hbm_img_msgs images read from their serialized bytes.

The bytes are rclpy's serialisation of the real message classes, built from the public
definitions (test/tros_fixtures.py): as a board's camera sends them.
"""

from builtin_interfaces.msg import Time
from hobot_npu_infer.ros.image_conversion import image_to_array
from hobot_npu_infer.ros.serialized_images import read_hbm_image
import numpy as np
import pytest
from rclpy.serialization import serialize_message


@pytest.fixture
def hbm_img_msgs(tros_messages):
    return tros_messages[0]


def serialized(module, height, width, encoding, data, step, kind='HbmMsg480P'):
    """Return the serialized message as mipi_cam fills it: data_size bytes of a fixed array."""
    msg = getattr(module, kind)()
    msg.index, msg.time_stamp = 7, Time(sec=12, nanosec=34)
    msg.height, msg.width, msg.step, msg.data_size = height, width, step, len(data)
    msg.encoding = np.frombuffer(encoding.encode().ljust(12, b'\0'), np.uint8)
    payload = np.zeros(msg.MAX_SIZE, np.uint8)
    payload[:len(data)] = np.frombuffer(data, np.uint8)
    msg.data = payload
    return serialize_message(msg)


def test_an_nv12_frame_reads_as_a_view_of_its_bytes_at_its_data_size(hbm_img_msgs):
    pixels = np.arange(64 * 48 * 3 // 2, dtype=np.uint16).astype(np.uint8).tobytes()
    raw = serialized(hbm_img_msgs, 48, 64, 'nv12', pixels, 64, 'HbmMsg1080P')
    view = read_hbm_image(raw, frame_id='camera')
    assert (view.height, view.width, view.encoding, view.step) == (48, 64, 'nv12', 64)
    assert (view.header.stamp.sec, view.header.stamp.nanosec, view.header.frame_id) == \
        (12, 34, 'camera')
    assert bytes(view.data) == pixels  # data_size bytes, not the whole array
    got, order = image_to_array(view, keep_nv12=True)
    assert order == 'nv12' and got.shape == (72, 64)
    assert got.tobytes() == pixels and np.shares_memory(got, np.frombuffer(raw, np.uint8))


@pytest.mark.parametrize('step', [18, 6])  # 6: hobot_codec leaves step = width on bgr8
def test_a_bgr8_frame_converts_like_an_image(hbm_img_msgs, step):
    image = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    view = read_hbm_image(serialized(hbm_img_msgs, 4, 6, 'bgr8', image.tobytes(), step))
    got, order = image_to_array(view)
    np.testing.assert_array_equal(got, image)
    assert order == 'bgr'


def test_a_broken_message_is_a_one_line_error(hbm_img_msgs):
    raw = serialized(hbm_img_msgs, 48, 64, 'nv12', bytes(64 * 72), 64)
    with pytest.raises(ValueError, match='too short'):
        read_hbm_image(raw[:20])
    oversized = bytearray(raw)
    oversized[24:28] = (10 ** 7).to_bytes(4, 'little')  # data_size past the fixed array
    with pytest.raises(ValueError, match='data_size 10000000 runs past the message'):
        read_hbm_image(bytes(oversized))
