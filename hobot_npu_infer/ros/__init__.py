"""The ROS 2 layer: nodes, message conversion and diagnostics over the ROS-free core."""
