"""
RDK X5 with TogetheROS: mipi_cam -> infer_node on the BPU -> hobot_websocket's browser view.

ros2 launch hobot_npu_infer rdk_x5_tros.launch.py [image_width:=640] [image_height:=640]
    [config:=/path/to/params.yaml] [labels_file:=/path/to/classes.txt] [websocket:=true]

mipi_cam publishes NV12 frames over shared memory on /hbmem_img (hbm_img_msgs/HbmMsg1080P);
infer_node runs config/rdk_x5_tros.yaml on them (the RDK X5 image's YOLOv8 640x640 NV12 model:
a frame of 640x640 goes to the BPU byte for byte, another size is letterboxed on the CPU) and
publishes ai_msgs/PerceptionTargets on /hbmem_img/perception_targets; hobot_codec encodes the
frames to JPEG on /image_jpeg, and hobot_websocket draws the targets on them at
http://<board>:8000. mipi_cam, hobot_codec, hobot_websocket and hobot_shm are TROS packages:
this file runs only on a board with TROS installed. The nodes share hobot_shm's Fast DDS
profile (zero-copy), set by the included launch files: no dds_profile here.
"""

from hobot_npu_infer.ros.launch_arguments import checked_nodes, config_argument, installed_config
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

CAMERA_TOPIC = '/hbmem_img'  # mipi_cam's shared-memory topic
JPEG_TOPIC = '/image_jpeg'  # hobot_codec's JPEG frames, for the browser view
TARGETS_TOPIC = f'{CAMERA_TOPIC}/perception_targets'  # infer_node's PerceptionTargets


def tros_launch(package: str, launch_file: str, arguments: dict,
                condition=None) -> IncludeLaunchDescription:
    """Include ``launch_file`` of the TROS ``package`` with ``arguments``."""
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare(package), 'launch', launch_file])),
        launch_arguments=list(arguments.items()), condition=condition)


def nodes(config, env):
    """infer_node on the checked ``config``, with the class names of ``labels_file``."""
    return [Node(package='hobot_npu_infer', executable='infer_node', name='infer_node',
                 parameters=[config, {'labels_file': LaunchConfiguration('labels_file')}],
                 additional_env=env, output='screen')]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('image_width', default_value='640',
                              description="camera frame width (the model's: byte for byte)"),
        DeclareLaunchArgument('image_height', default_value='640',
                              description='camera frame height'),
        config_argument('rdk_x5_tros.yaml'),
        DeclareLaunchArgument('labels_file', default_value=installed_config('coco_classes.txt'),
                              description='class names of the model, one per line'),
        DeclareLaunchArgument('websocket', default_value='true',
                              description='start hobot_codec and hobot_websocket (browser view '
                                          'on port 8000)'),
        tros_launch('hobot_shm', 'hobot_shm.launch.py', {}),
        tros_launch('mipi_cam', 'mipi_cam.launch.py', {
            'mipi_io_method': 'shared_mem', 'mipi_out_format': 'nv12',
            'mipi_image_width': LaunchConfiguration('image_width'),
            'mipi_image_height': LaunchConfiguration('image_height'),
            'mipi_frame_ts_type': 'realtime'}),
        checked_nodes(nodes),
        tros_launch('hobot_codec', 'hobot_codec_encode.launch.py', {
            'codec_in_mode': 'shared_mem', 'codec_in_format': 'nv12', 'codec_out_mode': 'ros',
            'codec_out_format': 'jpeg', 'codec_sub_topic': CAMERA_TOPIC,
            'codec_pub_topic': JPEG_TOPIC}, IfCondition(LaunchConfiguration('websocket'))),
        tros_launch('websocket', 'websocket.launch.py', {
            'websocket_image_topic': JPEG_TOPIC, 'websocket_image_type': 'mjpeg',
            'websocket_smart_topic': TARGETS_TOPIC},
            IfCondition(LaunchConfiguration('websocket'))),
    ])
