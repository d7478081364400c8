"""infer_node with config/default.yaml, and image_source as a test camera unless a real one is used.

ros2 launch hobot_npu_infer infer.launch.py [namespace:=robot1] [image_topic:=/camera/image_raw]
    [config:=/path/to/params.yaml] [use_test_camera:=false]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    namespace = LaunchConfiguration('namespace')
    image_topic = LaunchConfiguration('image_topic')
    config = LaunchConfiguration('config')
    # Both nodes name the camera topic 'image_raw'; one remapping points it anywhere.
    camera = [('image_raw', image_topic)]
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of both nodes'),
        DeclareLaunchArgument('image_topic', default_value='image_raw',
                              description='camera topic published and subscribed'),
        DeclareLaunchArgument(
            'config', description='parameters file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('hobot_npu_infer'), 'config', 'default.yaml'])),
        DeclareLaunchArgument('use_test_camera', default_value='true',
                              description='start image_source; false with a real camera driver'),
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], remappings=camera, output='screen',
             condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], remappings=camera, output='screen'),
    ])
