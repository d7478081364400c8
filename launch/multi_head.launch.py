"""
CenterFace as a packed model: faces and landmarks at their own rates over one shared trunk.

Faces at the camera rate, landmarks five times slower. The same nodes as infer.launch.py, with
config/multi_head.yaml.

ros2 launch hobot_npu_infer multi_head.launch.py [namespace:=robot1]
    [image_topic:=/camera/image_raw]
"""

from hobot_npu_infer.ros.launch_arguments import installed_config, PACKAGE
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    infer_launch = PathJoinSubstitution([FindPackageShare(PACKAGE), 'launch', 'infer.launch.py'])
    return LaunchDescription([
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(infer_launch),
            launch_arguments={'config': installed_config('multi_head.yaml')}.items()),
    ])
