"""
The launch arguments several launch files take, declared once for all of them.

Only launch/*.launch.py import this module. Launch files are installed apart from the package
(share/hobot_npu_infer/launch), so they import what they share from the installed package, as
nav2's launch files import nav2_common.launch. It imports ``launch`` and ``launch_ros``, which a
ROS 2 install has and the pip environment lacks; no node imports it, so the nodes never need
them.
"""

from typing import List, Tuple

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'hobot_npu_infer'
STARTS_IMAGE_SOURCE = 'start image_source; false with a real camera driver'


def namespace_argument(description: str = 'namespace of both nodes') -> DeclareLaunchArgument:
    """``namespace``: where the launched nodes live; empty by default."""
    return DeclareLaunchArgument('namespace', default_value='', description=description)


def image_topic_argument() -> DeclareLaunchArgument:
    """``image_topic``: the one camera topic, read through :func:`camera_remappings`."""
    return DeclareLaunchArgument('image_topic', default_value='image_raw',
                                 description='camera topic published and subscribed')


def installed_config(config_file: str) -> PathJoinSubstitution:
    """
    Return the path of ``config_file`` in the installed package's config/, found at launch time.

    Every launch file finds its parameters file there the same way; only the file differs.
    """
    return PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', config_file])


def config_argument(config_file: str) -> DeclareLaunchArgument:
    """``config``: the parameters file, by default :func:`installed_config` of ``config_file``."""
    return DeclareLaunchArgument('config', description='parameters file',
                                 default_value=installed_config(config_file))


def use_test_camera_argument(description: str = STARTS_IMAGE_SOURCE) -> DeclareLaunchArgument:
    """``use_test_camera``: start image_source as the camera (true by default)."""
    return DeclareLaunchArgument('use_test_camera', default_value='true',
                                 description=description)


def single_camera_arguments() -> List[DeclareLaunchArgument]:
    """
    ``namespace``, ``image_topic`` and ``config`` (config/default.yaml), in that order.

    The one-camera launch files (infer_node and its managed variant) take these alike.
    """
    return [namespace_argument(), image_topic_argument(), config_argument('default.yaml')]


def camera_remappings() -> List[Tuple[str, LaunchConfiguration]]:
    """
    Return the remapping that points a node's camera topic at ``image_topic``.

    image_source and infer_node both name the camera topic 'image_raw', so one remapping
    points it anywhere.
    """
    return [('image_raw', LaunchConfiguration('image_topic'))]
