"""
The launch arguments several launch files take, and the way they start their nodes.

Only launch/*.launch.py import this module. Launch files are installed apart from the package
(share/hobot_npu_infer/launch), so they import what they share from the installed package, as
nav2's launch files import nav2_common.launch. It imports ``launch`` and ``launch_ros``, which a
ROS 2 install has and the pip environment lacks; no node imports it, so the nodes never need
them.

Defaults are plain paths into the installed share directory, found when the launch file is
read, so ``ros2 launch ... --show-args`` prints them as paths. The files the nodes read are
checked at launch time by :func:`checked_nodes`, which also gives the nodes the Fast DDS
profile of ``dds_profile``.
"""

import os
from typing import Callable, Dict, List, Mapping, Tuple

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration

PACKAGE = 'hobot_npu_infer'
STARTS_IMAGE_SOURCE = 'start image_source; false with a real camera driver'
# Fast DDS with a shared-memory segment for camera frames (docs/launch.md, "Large frames").
DDS_PROFILE = 'fastdds_large_frames.xml'
# Where Fast DDS looks for its default profile: Humble and Jazzy read the first, Kilted the
# second.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
FAST_DDS = 'rmw_fastrtps'  # rmw_fastrtps_cpp, rmw_fastrtps_dynamic_cpp


def namespace_argument(description: str = 'namespace of both nodes') -> DeclareLaunchArgument:
    """``namespace``: where the launched nodes live; empty by default."""
    return DeclareLaunchArgument('namespace', default_value='', description=description)


def image_topic_argument() -> DeclareLaunchArgument:
    """``image_topic``: the one camera topic, read through :func:`camera_remappings`."""
    return DeclareLaunchArgument('image_topic', default_value='image_raw',
                                 description='camera topic published and subscribed')


def installed_config(config_file: str) -> str:
    """
    Return the path of ``config_file`` in the installed package's config/.

    Found when the launch file is read, as a plain path: ``--show-args`` prints it as it is.
    """
    return os.path.join(get_package_share_directory(PACKAGE), 'config', config_file)


def config_argument(config_file: str) -> DeclareLaunchArgument:
    """``config``: the parameters file, by default :func:`installed_config` of ``config_file``."""
    return DeclareLaunchArgument('config', default_value=installed_config(config_file),
                                 description='parameters file of the nodes')


def dds_profile_argument() -> DeclareLaunchArgument:
    """``dds_profile``: the Fast DDS profile of the nodes; '' leaves their environment alone."""
    return DeclareLaunchArgument(
        'dds_profile', default_value=installed_config(DDS_PROFILE),
        description='Fast DDS profile file of the nodes (a shared-memory segment large enough '
                    "for camera frames; other machines still reachable); '' keeps the "
                    "environment's FASTRTPS_DEFAULT_PROFILES_FILE. Fast DDS only")


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


def dds_environment(profile: str, environment: Mapping[str, str]) -> Dict[str, str]:
    """
    Return the variables that give a node the Fast DDS ``profile``: its ``additional_env``.

    Empty when ``profile`` is '' (the environment's own settings stay) or when
    RMW_IMPLEMENTATION names another RMW than Fast DDS (unset, it is Fast DDS: the default of
    Humble and Jazzy).
    """
    rmw = environment.get('RMW_IMPLEMENTATION', '')
    if not profile or (rmw and not rmw.startswith(FAST_DDS)):
        return {}
    return {name: profile for name in PROFILE_VARIABLES}


def dds_note(profile: str, env: Dict[str, str], environment: Mapping[str, str]) -> str:
    """Return the one line the launch logs about the nodes' Fast DDS profile ('' for none)."""
    if not profile:
        return ''
    if not env:
        rmw = environment.get('RMW_IMPLEMENTATION')
        return f'dds_profile not applied: RMW_IMPLEMENTATION={rmw} is not Fast DDS'
    note = f'nodes use the Fast DDS profile {profile}'
    own = {environment.get(name) for name in PROFILE_VARIABLES} - {None, '', profile}
    if own:
        note += (f' instead of {PROFILE_VARIABLES[0]}={sorted(own)[0]} of the environment '
                 "(dds_profile:='' keeps it)")
    return note


def existing_file(launch_configurations: Mapping[str, str], argument: str, what: str) -> str:
    """
    Return the absolute path the launch argument ``argument`` names, if that file exists.

    Otherwise raise, which stops the launch before any node starts; ``ros2 launch`` prints the
    message on one line (``Caught exception in launch (see debug for traceback): ...``).
    """
    given = launch_configurations.get(argument, '')
    if not given:
        raise RuntimeError(f'{argument} is empty: it must name a {what}')
    path = os.path.abspath(os.path.expanduser(given))
    if not os.path.isfile(path):
        where = f' ({path})' if path != given else ''
        raise RuntimeError(f'{argument}:={given}: no such {what}{where}')
    return path


NodeFactory = Callable[[str, Dict[str, str]], list]


def checked_nodes(make_nodes: NodeFactory) -> OpaqueFunction:
    """
    Return the action that starts what ``make_nodes(config, env)`` returns, at launch time.

    ``config`` is the parameters file ``config`` names, checked first: a file that does not
    exist stops the launch with one error line before anything starts (``ros2 launch`` on its
    own would only warn and start the nodes on their defaults). So is ``dds_profile`` when not
    ''. ``env`` is :func:`dds_environment` of it: each node's ``additional_env``, so the
    profile reaches the launched processes and nothing else.
    """
    def setup(context) -> list:
        configurations = context.launch_configurations
        config = existing_file(configurations, 'config', 'parameters file')
        profile = configurations.get('dds_profile', '')
        if profile:
            profile = existing_file(configurations, 'dds_profile', 'Fast DDS profile file')
        environment = getattr(context, 'environment', os.environ)
        env = dds_environment(profile, environment)
        note = dds_note(profile, env, environment)
        return ([LogInfo(msg=note)] if note else []) + list(make_nodes(config, env))
    return OpaqueFunction(function=setup)
