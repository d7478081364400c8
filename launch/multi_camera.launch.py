"""
One infer_node serving four cameras with cross-camera batching (config/multi_camera.yaml).

ros2 launch hobot_npu_infer multi_camera.launch.py [use_test_camera:=false] [namespace:=robot1]
    [config:=/path/to/params.yaml] [dds_profile:='']
"""

from hobot_npu_infer.ros.launch_arguments import (checked_nodes, config_argument,
                                                  dds_profile_argument, namespace_argument,
                                                  use_test_camera_argument)
from launch import LaunchDescription
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def nodes(config, env):
    """image_source (four photos on four topics) and infer_node, on the checked ``config``."""
    namespace = LaunchConfiguration('namespace')
    return [
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], additional_env=env, output='screen',
             condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], additional_env=env, output='screen'),
    ]


def generate_launch_description():
    return LaunchDescription([
        namespace_argument('namespace of the nodes'),
        use_test_camera_argument('publish four sample photos on the camera topics'),
        config_argument('multi_camera.yaml'),
        dds_profile_argument(),
        checked_nodes(nodes),
    ])
