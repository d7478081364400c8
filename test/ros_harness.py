"""Integration-test access to real ROS 2 processes and a listening node (the package's own
RosProcess and Listener), with the loopback DDS environment set for this test process."""

from hobot_npu_infer.ros.listener import Listener
from hobot_npu_infer.ros.processes import RosProcess, ros_value
from hobot_npu_infer.ros.ros_env import child_environment, loopback_environment

loopback_environment()



def stamp_key(stamp):
    """(sec, nanosec) of a builtin_interfaces/Time or of its JSON form."""
    if isinstance(stamp, dict):
        return stamp['sec'], stamp['nanosec']
    return stamp.sec, stamp.nanosec


def published_frame_ids(listener, image_topic, up_to):
    """Stamp -> frame_id of the frames received on ``image_topic``, once the listener holds
    every frame up to the stamp ``up_to`` (detections may overtake their image here)."""
    listener.wait_for(lambda: any(stamp_key(m.header.stamp) >= up_to
                                  for m in listener.received(image_topic)), timeout=10)
    return {stamp_key(m.header.stamp): m.header.frame_id for m in listener.received(image_topic)}


__all__ = ['published_frame_ids', 'stamp_key', 'Listener', 'RosProcess', 'child_environment', 'loopback_environment', 'ros_value']
