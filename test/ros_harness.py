"""Integration-test access to real ROS 2 processes and a listening node (the package's own
RosProcess and Listener), with the loopback DDS environment set for this test process."""

from hobot_npu_infer.ros.listener import Listener
from hobot_npu_infer.ros.processes import RosProcess, ros_value
from hobot_npu_infer.ros.ros_env import child_environment, loopback_environment

loopback_environment()

__all__ = ['Listener', 'RosProcess', 'child_environment', 'loopback_environment', 'ros_value']
