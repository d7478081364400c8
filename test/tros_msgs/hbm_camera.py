"""
A TROS camera stand-in: NV12 frames as hbm_img_msgs on a topic, as mipi_cam publishes them.

python hbm_camera.py TOPIC NV12_FILE WIDTH HEIGHT RATE_HZ [MESSAGE]

NV12_FILE holds one frame's bytes (WIDTH x HEIGHT x 3/2). Each message is MESSAGE
(HbmMsg1080P by default) filled as mipi_cam fills it: encoding 'nv12', step = width,
data_size = the frame's bytes at the start of the fixed data array, time_stamp = now (its
realtime stamps), index counting up; sensor-data QoS (best effort, keep last 5). Needs
hbm_img_msgs importable (test/tros_fixtures.py); runs until SIGINT.
"""

import sys

import hbm_img_msgs.msg
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data


def main():
    topic, path, width, height, rate_hz = sys.argv[1:6]
    kind = sys.argv[6] if len(sys.argv) > 6 else 'HbmMsg1080P'
    rclpy.init()
    node = rclpy.create_node('hbm_camera')
    publisher = node.create_publisher(getattr(hbm_img_msgs.msg, kind), topic,
                                      qos_profile_sensor_data)
    msg = getattr(hbm_img_msgs.msg, kind)()
    with open(path, 'rb') as f:
        frame = np.frombuffer(f.read(), np.uint8)
    data = np.zeros(msg.MAX_SIZE, np.uint8)
    data[:frame.size] = frame
    msg.data, msg.data_size = data, frame.size
    msg.width, msg.height, msg.step = int(width), int(height), int(width)
    msg.encoding = np.frombuffer(b'nv12'.ljust(12, b'\0'), np.uint8)

    def tick():
        msg.time_stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        msg.index += 1
    node.create_timer(1.0 / float(rate_hz), tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
