"""
Camera-size frames between processes, as the launch files start the nodes: received / sent.

image_source publishes 450 frames (15 s at 30 Hz) of 640x480 or 1280x720 bgr8, infer_node
receives them; both on config/default.yaml (best effort, depth 1) and both in the environment
infer.launch.py gives them. The launch file runs against the stand-ins
(test/launch_stand_ins.py), as ``ros2 launch`` would run it, and each process is started with
its node's ``additional_env``. infer_node's /diagnostics tell frames_in and input_rate_hz.

With the shipped profile (config/fastdds_large_frames.xml, the default of dds_profile) nearly
every frame arrives: asserted. With Fast DDS' defaults (``dds_profile:=''`` and no profile in
the environment) for both processes, for the camera only (a driver started outside the launch
files) or for infer_node only, the frames received are measured, not asserted: how many are
lost depends on the machine. DDS stays on loopback all the same
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a domain of this run's own, as for every test);
the profile itself pins nothing to loopback.

Fast DDS here often finds a newly started process seconds late, with every profile (the
loopback one of the tests included): frames published before it found infer_node go nowhere,
which is discovery, not transport. So the frames are counted from the first one infer_node
received: its stamp (the time image_source published it, carried by its detections) against
the time image_source began publishing tells how many were published before it, and
"after" is the frames sent from it on. Nearly all of those must arrive with the profile.

``pytest test/ros/test_large_frames.py -s`` prints the table docs/launch.md quotes. It takes
about three minutes.
"""

import json
import os
import re
import statistics
import time

from diagnostic_msgs.msg import DiagnosticArray
from hobot_npu_infer.harness import processes
from launch_stand_ins import run_launch_file
import pytest
from ros_harness import child_environment, Listener, RosProcess
from std_msgs.msg import String

PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
RATE_HZ = 30.0
FRAMES = 450  # 15 s: the 10 s rate window of /diagnostics lies whole within the stream
WINDOW_S = 10.0  # stats_window_s of config/default.yaml
DETECTIONS = '/image_raw/detections'
INPUT_STATUS = 'infer_node: input '
PUBLISHING = re.compile(r'^\[INFO\] \[(\d+\.\d+)\] \[image_source\]: publishing ', re.M)
# what each process's DDS settings come from: (image_source, infer_node)
PROFILE, DEFAULTS = 'profile', 'defaults'
CASES = {'profile': (PROFILE, PROFILE), 'defaults': (DEFAULTS, DEFAULTS),
         'camera on defaults': (DEFAULTS, PROFILE), 'infer_node on defaults': (PROFILE, DEFAULTS)}


@pytest.fixture
def launch_environment(monkeypatch):
    """
    Return {executable: (parameters file, additional_env)} of infer.launch.py's nodes.

    The launch runs in the environment of a robot with no Fast DDS profile of its own; each
    call takes ``dds_profile`` (None: its default, the shipped profile). A process started
    without a profile variable in its additional_env runs on Fast DDS' defaults: the
    harness's loopback profile (config/fastdds_shm.xml) is taken out of its environment.
    """
    robot = {k: v for k, v in child_environment().items() if k not in PROFILE_VARIABLES}

    def launched(dds_profile=None):
        given = {} if dds_profile is None else {'dds_profile': dds_profile}
        _, nodes, _ = run_launch_file(monkeypatch, 'infer.launch.py', environment=robot,
                                      **given)
        return {n['executable']: (n['parameters'][0], n['additional_env']) for n in nodes}

    loopback = processes.child_environment

    def environment_as_launched(**extra):
        env = loopback(**extra)
        for name in PROFILE_VARIABLES:
            if name not in extra:
                del env[name]
        return env
    monkeypatch.setattr(processes, 'child_environment', environment_as_launched)
    return launched


def input_reports(listener):
    """(arrival time, frames_in, input_rate_hz) of each infer_node input status received."""
    reports = []
    for arrived, array in listener.received_with_times('/diagnostics'):
        for status in array.status:
            if status.name.startswith(INPUT_STATUS):
                values = {kv.key: kv.value for kv in status.values}
                reports.append((arrived, int(values['frames_in']),
                                float(values['input_rate_hz'])))
    return reports


def steady_rate(reports):
    """
    Return the median input_rate_hz of the reports whose rate window lies within the stream.

    A report's window is the 10 s before it: from the first report with a frame in it, and
    before the frames stopped coming.
    """
    final = reports[-1][1]
    first = next(t for t, n, _ in reports if n > 0)
    last = next(t for t, n, _ in reports if n == final)
    steady = [rate for t, n, rate in reports if first + WINDOW_S <= t < last]
    return statistics.median(steady) if steady else max(rate for _, _, rate in reports)


def first_stamp(listener):
    """Return the stamp (s) of the first frame infer_node ran, from its detections; or None."""
    stamps = [json.loads(m.data)['header']['stamp'] for m in listener.received(DETECTIONS)]
    return min((s['sec'] + s['nanosec'] * 1e-9 for s in stamps), default=None)


def measure(tmp_path, launched, size, camera_settings, infer_settings):
    """
    Stream FRAMES frames of ``size`` from image_source into infer_node; return the counts.

    sent; after: those published from the first frame infer_node received on; frames_in;
    input_rate_hz (steady, see :func:`steady_rate`); reached_s: from image_source's
    "publishing" line (its timer starts then, the first frame follows one period later) to
    the stamp of that first frame.
    """
    own, plain = launched(), launched('')
    camera_config, camera_env = (own if camera_settings == PROFILE else plain)['image_source']
    infer_config, infer_env = (own if infer_settings == PROFILE else plain)['infer_node']
    assert bool(camera_env) == (camera_settings == PROFILE)
    assert bool(infer_env) == (infer_settings == PROFILE)
    listener = Listener('large_frames_listener')
    node = camera = None
    try:
        listener.subscribe(DiagnosticArray, '/diagnostics')
        listener.subscribe(String, DETECTIONS)
        # JSON detections whether vision_msgs is installed or not: their stamps are read here
        node = RosProcess('infer_node', {'detections_format': 'json'}, params_file=infer_config,
                          env=infer_env, node_name='infer_node',
                          log_path=str(tmp_path / 'infer_node.log'))
        assert listener.wait_for(lambda: input_reports(listener), timeout=60), node.output()
        camera = RosProcess('image_source', {'rate_hz': RATE_HZ, 'size': size,
                                             'max_frames': FRAMES},
                            params_file=camera_config, env=camera_env, node_name='image_source',
                            log_path=str(tmp_path / 'image_source.log'))
        time.sleep(FRAMES / RATE_HZ)

        def settled():  # the last three reports (1 s apart) saw no new frame
            counts = [n for _, n, _ in input_reports(listener)[-3:]]
            return len(counts) == 3 and counts[0] > 0 and len(set(counts)) == 1
        assert listener.wait_for(settled, timeout=60), node.output() + camera.output()
        reports, first = input_reports(listener), first_stamp(listener)
    finally:
        listener.close()
        codes = [p.stop() for p in (camera, node) if p is not None]
    assert codes == [0, 0]
    [publishing] = PUBLISHING.findall(camera.output())
    reached = first - float(publishing)
    before = min(FRAMES, max(0, round(reached * RATE_HZ) - 1))
    return {'sent': FRAMES, 'after': FRAMES - before, 'frames_in': reports[-1][1],
            'input_rate_hz': steady_rate(reports), 'reached_s': reached}


def measured(tmp_path, launched, size, case):
    """Measure ``case`` and print its row of the table in docs/launch.md."""
    counts = measure(tmp_path, launched, size, *CASES[case])
    camera, infer = CASES[case]
    print(f'\n| {size} | {camera} | {infer} | {counts["frames_in"]} / {counts["after"]} '
          f'({100 * counts["frames_in"] / counts["after"]:.0f} %) | {counts["sent"]} | '
          f'{counts["reached_s"]:.1f} s | {counts["input_rate_hz"]:.1f} |')
    return counts


@pytest.mark.parametrize('size', ['640x480', '1280x720'])
def test_frames_arrive_whole_with_the_profile_the_launch_files_set(tmp_path, launch_environment,
                                                                   size):
    counts = measured(tmp_path, launch_environment, size, 'profile')
    assert counts['frames_in'] >= 0.95 * counts['after']
    assert counts['frames_in'] <= counts['after'] + 1  # the count from the first frame on holds


@pytest.mark.parametrize('case', ['defaults', 'camera on defaults', 'infer_node on defaults'])
@pytest.mark.parametrize('size', ['640x480', '1280x720'])
def test_frames_received_without_the_profile_are_measured(tmp_path, launch_environment, size,
                                                          case):
    counts = measured(tmp_path, launch_environment, size, case)
    assert 0 < counts['frames_in'] <= counts['after'] + 1


def test_the_profile_reaches_both_processes_and_the_defaults_none(launch_environment):
    own, plain = launch_environment(), launch_environment('')
    for executable in ('image_source', 'infer_node'):
        config, env = own[executable]
        assert os.path.basename(config) == 'default.yaml'
        assert env == {name: env[PROFILE_VARIABLES[0]] for name in PROFILE_VARIABLES}
        assert os.path.basename(env[PROFILE_VARIABLES[0]]) == 'fastdds_large_frames.xml'
        assert plain[executable] == (config, {})
    started = processes.child_environment(**own['infer_node'][1])
    assert started['FASTRTPS_DEFAULT_PROFILES_FILE'].endswith('fastdds_large_frames.xml')
    assert started['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'  # the measurement's own
    assert not set(PROFILE_VARIABLES) & set(processes.child_environment())
