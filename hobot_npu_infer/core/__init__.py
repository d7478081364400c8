"""
The ROS-free inference core: backends, models, pre- and post-processing, statistics.

Nothing under this package imports rclpy, so it runs and is tested without ROS.
"""
