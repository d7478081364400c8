"""
image_source and infer_lifecycle_node (the managed infer_node) with config/default.yaml.

ros2 launch hobot_npu_infer infer_lifecycle.launch.py [autostart:=false] [namespace:=robot1]
    [image_topic:=/camera/image_raw] [config:=/path/to/params.yaml] [use_test_camera:=false]
    [dds_profile:='']

The managed node is named infer_node, so the same parameters file applies (its keys are
``/**/infer_node``). With autostart (the default) the launch configures it, and activates it
the first time it is inactive; with autostart:=false it waits unconfigured for
``ros2 lifecycle set /infer_node configure`` (or a lifecycle manager).
"""

from hobot_npu_infer.ros.launch_arguments import (camera_remappings, checked_nodes,
                                                  dds_profile_argument, single_camera_arguments,
                                                  use_test_camera_argument)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def nodes(config, env):
    """image_source, and infer_lifecycle_node taken to active with autostart."""
    namespace = LaunchConfiguration('namespace')
    autostart = IfCondition(LaunchConfiguration('autostart'))
    camera = camera_remappings()
    infer = LifecycleNode(package='hobot_npu_infer', executable='infer_lifecycle_node',
                          name='infer_node', namespace=namespace, parameters=[config],
                          remappings=camera, additional_env=env, output='screen')
    return [
        Node(package='hobot_npu_infer', executable='image_source', name='image_source',
             namespace=namespace, parameters=[config], remappings=camera, additional_env=env,
             output='screen', condition=IfCondition(LaunchConfiguration('use_test_camera'))),
        infer,
        # configured -> inactive: activate, once (a later manual configure is left inactive)
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=infer, start_state='configuring', goal_state='inactive',
            entities=[EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(infer),
                transition_id=Transition.TRANSITION_ACTIVATE))], handle_once=True),
            condition=autostart),
        EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(infer),
                                    transition_id=Transition.TRANSITION_CONFIGURE),
                  condition=autostart),
    ]


def generate_launch_description():
    return LaunchDescription([
        *single_camera_arguments(),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='configure and activate infer_node at launch'),
        use_test_camera_argument(),
        dds_profile_argument(),
        checked_nodes(nodes),
    ])
