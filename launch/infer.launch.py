"""
infer_node with config/default.yaml, and image_source as a test camera unless a real one is used.

ros2 launch hobot_npu_infer infer.launch.py [namespace:=robot1] [image_topic:=/camera/image_raw]
    [config:=/path/to/params.yaml] [use_test_camera:=false]
"""

from hobot_npu_infer.ros.launch_arguments import (camera_remappings, single_camera_arguments,
                                                  use_test_camera_argument)
from launch import LaunchDescription
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    namespace = LaunchConfiguration('namespace')
    config = LaunchConfiguration('config')
    camera = camera_remappings()
    return LaunchDescription([
        *single_camera_arguments(),
        use_test_camera_argument(),
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], remappings=camera, output='screen',
             condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], remappings=camera, output='screen'),
    ])
