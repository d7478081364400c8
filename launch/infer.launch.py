"""
infer_node with config/default.yaml, and image_source as a test camera unless a real one is used.

ros2 launch hobot_npu_infer infer.launch.py [namespace:=robot1] [image_topic:=/camera/image_raw]
    [config:=/path/to/params.yaml] [use_test_camera:=false] [dds_profile:='']

Both nodes get the Fast DDS profile dds_profile names (config/fastdds_large_frames.xml: camera
frames whole over shared memory); a config file that does not exist stops the launch.
"""

from hobot_npu_infer.ros.launch_arguments import (camera_remappings, checked_nodes,
                                                  dds_profile_argument, single_camera_arguments,
                                                  use_test_camera_argument)
from launch import LaunchDescription
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def nodes(config, env):
    """image_source (with use_test_camera) and infer_node, on the checked ``config``."""
    namespace = LaunchConfiguration('namespace')
    camera = camera_remappings()
    return [
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], remappings=camera, additional_env=env,
             output='screen', condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], remappings=camera, additional_env=env,
             output='screen'),
    ]


def generate_launch_description():
    return LaunchDescription([
        *single_camera_arguments(),
        use_test_camera_argument(),
        dds_profile_argument(),
        checked_nodes(nodes),
    ])
