"""One infer_node serving four cameras with cross-camera batching (config/multi_camera.yaml).

ros2 launch hobot_npu_infer multi_camera.launch.py [use_test_camera:=false] [namespace:=robot1]
    [config:=/path/to/params.yaml]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    namespace = LaunchConfiguration('namespace')
    config = LaunchConfiguration('config')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the nodes'),
        DeclareLaunchArgument('use_test_camera', default_value='true',
                              description='publish four sample photos on the camera topics'),
        DeclareLaunchArgument(
            'config', description='parameters file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('hobot_npu_infer'), 'config', 'multi_camera.yaml'])),
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], output='screen',
             condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], output='screen'),
    ])
