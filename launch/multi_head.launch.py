"""
CenterFace as a packed model: faces and landmarks at their own rates over one shared trunk.

Faces at the camera rate, landmarks five times slower. The same nodes as infer.launch.py, with
config/multi_head.yaml unless config:= names another file.

ros2 launch hobot_npu_infer multi_head.launch.py [namespace:=robot1]
    [image_topic:=/camera/image_raw] [config:=/path/to/params.yaml] [use_test_camera:=false]
    [dds_profile:='']
"""

from hobot_npu_infer.ros.launch_arguments import config_argument, PACKAGE
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    infer_launch = PathJoinSubstitution([FindPackageShare(PACKAGE), 'launch', 'infer.launch.py'])
    return LaunchDescription([
        # declared before the include, so --show-args lists this default, not infer's
        config_argument('multi_head.yaml'),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(infer_launch),
            launch_arguments={'config': LaunchConfiguration('config')}.items()),
    ])
