"""
launch/rdk_x5_tros.launch.py against stand-ins of launch and launch_ros.

What the file hands to launch: the TROS launch files it includes (hobot_shm, mipi_cam,
hobot_codec, hobot_websocket) with their arguments, and infer_node on config/rdk_x5_tros.yaml,
its PerceptionTargets on the topic hobot_websocket draws. The TROS packages exist only on a
board: that they accept these arguments is their documented interface, not proven here.
"""

import os

from conftest import REPO
from hobot_npu_infer.ros.infer_parameters import PARAMETERS
from launch_stand_ins import PACKAGE, run_launch_file
import pytest
import yaml

LAUNCH = 'rdk_x5_tros.launch.py'
CONFIG = os.path.join(REPO, 'config', 'rdk_x5_tros.yaml')


def includes(actions) -> dict:
    """Return {TROS package: (its launch file, arguments, condition)} of each include."""
    found = {}
    for action in actions:
        if type(action).__name__ != 'IncludeLaunchDescription':
            continue
        [source] = action.args
        [parts] = source.args[0].args
        package = parts[0].args[0]
        found[package] = (parts[2], dict(action.kwargs['launch_arguments']),
                          action.kwargs['condition'])
    return found


def value(setting, configurations):
    """Return a launch argument's value: text, or a LaunchConfiguration resolved by hand."""
    return setting if isinstance(setting, str) else configurations[setting.args[0]]


@pytest.fixture
def launched(monkeypatch):
    arguments, nodes, actions = run_launch_file(monkeypatch, LAUNCH)
    defaults = {name: kwargs['default_value'] for name, kwargs in arguments.items()}
    return defaults, nodes, actions


def test_the_camera_codec_and_web_view_are_the_tros_launch_files(launched):
    defaults, _, actions = launched
    found = includes(actions)
    assert list(found) == ['hobot_shm', 'mipi_cam', 'hobot_codec', 'websocket']
    assert found['hobot_shm'][0] == 'hobot_shm.launch.py'  # the zero-copy environment first
    launch_file, camera, _ = found['mipi_cam']
    assert launch_file == 'mipi_cam.launch.py'
    assert {k: value(v, defaults) for k, v in camera.items()} == {
        'mipi_io_method': 'shared_mem', 'mipi_out_format': 'nv12', 'mipi_image_width': '640',
        'mipi_image_height': '640', 'mipi_frame_ts_type': 'realtime'}
    _, codec, condition = found['hobot_codec']
    assert (codec['codec_in_mode'], codec['codec_sub_topic']) == ('shared_mem', '/hbmem_img')
    assert (codec['codec_out_format'], codec['codec_pub_topic']) == ('jpeg', '/image_jpeg')
    assert value(condition.args[0], defaults) == 'true'
    _, web, condition = found['websocket']
    assert (web['websocket_image_topic'], web['websocket_image_type']) == ('/image_jpeg', 'mjpeg')
    assert value(condition.args[0], defaults) == 'true'


def test_infer_node_reads_the_camera_and_feeds_the_web_view(launched):
    defaults, [node], actions = launched
    assert (node['package'], node['executable']) == (PACKAGE, 'infer_node')
    assert node['parameters'][0] == CONFIG == defaults['config']
    labels = value(node['parameters'][1]['labels_file'], defaults)
    assert labels == os.path.join(REPO, 'config', 'coco_classes.txt')
    with open(labels) as f:
        assert len(f.read().splitlines()) == 80
    assert node['additional_env'] == {}  # hobot_shm's Fast DDS profile, not ours
    with open(CONFIG) as f:
        params = yaml.safe_load(f)['/**/infer_node']['ros__parameters']
    declared = {spec.name for spec in PARAMETERS}
    assert set(params) <= declared, set(params) - declared
    [camera] = params['hbmem_inputs']
    assert camera == includes(actions)['hobot_codec'][1]['codec_sub_topic']
    assert params['detections_format'] == 'perception_targets'
    smart_topic = includes(actions)['websocket'][1]['websocket_smart_topic']
    assert smart_topic == f'{camera}/perception_targets'


def test_every_argument_has_a_plain_default_and_a_description(launched, monkeypatch, tmp_path):
    arguments, _, _ = run_launch_file(monkeypatch, LAUNCH)
    assert set(arguments) == {'image_width', 'image_height', 'config', 'labels_file', 'websocket'}
    assert all(isinstance(a['default_value'], str) and a['description']
               for a in arguments.values())
    mine = tmp_path / 'x5.yaml'
    mine.write_text('{}\n')
    _, [node], _ = run_launch_file(monkeypatch, LAUNCH, config=str(mine))
    assert node['parameters'][0] == str(mine)
    with pytest.raises(RuntimeError, match='^config:=/no/such.yaml: no such parameters file$'):
        run_launch_file(monkeypatch, LAUNCH, config='/no/such.yaml')
