"""hobot_npu_infer: neural-network inference on robot NPUs for ROS 2."""

__version__ = '0.1.0'
