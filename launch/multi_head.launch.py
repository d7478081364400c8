"""CenterFace as a packed model: faces at the camera rate, landmarks five times slower, over one
shared trunk (config/multi_head.yaml).

ros2 launch hobot_npu_infer multi_head.launch.py [namespace:=robot1] [image_topic:=/camera/image_raw]
    [config:=/path/to/params.yaml]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    namespace = LaunchConfiguration('namespace')
    config = LaunchConfiguration('config')
    camera = [('image_raw', LaunchConfiguration('image_topic'))]
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of both nodes'),
        DeclareLaunchArgument('image_topic', default_value='image_raw',
                              description='camera topic published and subscribed'),
        DeclareLaunchArgument(
            'config', description='parameters file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('hobot_npu_infer'), 'config', 'multi_head.yaml'])),
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], remappings=camera, output='screen'),
        Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
             namespace=namespace, parameters=[config], remappings=camera, output='screen'),
    ])
