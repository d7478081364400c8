"""CenterFace as a packed model: faces at the camera rate, landmarks five times slower, over one
shared trunk. The same nodes as infer.launch.py, with config/multi_head.yaml.

ros2 launch hobot_npu_infer multi_head.launch.py [namespace:=robot1] [image_topic:=/camera/image_raw]
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare('hobot_npu_infer')
    return LaunchDescription([
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch',
                                                                'infer.launch.py'])),
            launch_arguments={'config': PathJoinSubstitution(
                [share, 'config', 'multi_head.yaml'])}.items()),
    ])
