"""The ament_python layout, proven by a real colcon build, and the launch files' wiring."""

import ast
import os
import shutil
import subprocess
import sys

from conftest import REPO
from launch_stand_ins import run_launch_file
from project_files import console_scripts as entry_points
import pytest
from tros_fixtures import PACKAGES as TROS_PACKAGES
import yaml

PACKAGE = 'hobot_npu_infer'
LAUNCH_ARGUMENTS = f'{PACKAGE}.ros.launch_arguments'
SOURCES = ('package.xml', 'setup.py', 'setup.cfg', 'resource', PACKAGE, 'launch', 'config')


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    workspace = tmp_path_factory.mktemp('ws')
    src = workspace / 'src' / PACKAGE
    src.mkdir(parents=True)
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy(path, src / name)
    colcon = os.path.join(os.path.dirname(sys.executable), 'colcon')
    proc = subprocess.run([colcon, 'build'], cwd=workspace, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return workspace / 'install' / PACKAGE


def test_colcon_installs_every_command_where_ros2_run_finds_it(install):
    for name in entry_points():
        path = install / 'lib' / PACKAGE / name
        assert path.is_file() and os.access(path, os.X_OK), name


def test_colcon_installs_marker_manifest_launch_and_config(install):
    share = install / 'share'
    assert (share / 'ament_index' / 'resource_index' / 'packages' / PACKAGE).is_file()
    assert (share / PACKAGE / 'package.xml').is_file()
    assert (share / PACKAGE / 'launch' / 'infer.launch.py').is_file()
    for name in ('default.yaml', 'multi_camera.yaml', 'multi_head.yaml', 'fastdds_shm.xml',
                 'fastdds_large_frames.xml'):
        assert (share / PACKAGE / 'config' / name).is_file()
    for name in ('multi_camera.launch.py', 'multi_head.launch.py', 'infer_lifecycle.launch.py'):
        assert (share / PACKAGE / 'launch' / name).is_file()


def test_installed_executable_runs_and_rejects_bad_parameters(install):
    exe = install / 'lib' / PACKAGE / 'infer_node'
    [site] = install.glob('lib/python3*/site-packages')  # what `source install/setup.sh` adds
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([str(exe), '--ros-args', '-p', 'model:=no_such_model'],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: unknown model name 'no_such_model'")


def parsed_package_xml():
    from catkin_pkg.package import parse_package
    return parse_package(os.path.join(REPO, 'package.xml'))


@pytest.mark.filterwarnings('ignore::DeprecationWarning:catkin_pkg')
@pytest.mark.filterwarnings('ignore:.*deprecated.*')
def test_package_xml():
    package = parsed_package_xml()
    assert package.package_format == 3 and package.name == PACKAGE
    assert package.get_build_type() == 'ament_python'
    package.evaluate_conditions({'HOBOT_NPU_INFER_VISION_MSGS': ''})
    runs = {d.name for d in package.exec_depends if d.evaluated_condition is not False}
    assert {'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'python3-numpy',
            'python3-opencv', 'vision_msgs'} <= runs
    package.evaluate_conditions({'HOBOT_NPU_INFER_VISION_MSGS': '0'})
    assert 'vision_msgs' not in {d.name for d in package.exec_depends
                                 if d.evaluated_condition is not False}


def imported_top_level_modules(folder):
    """Return the top-level names every .py file under ``folder`` imports."""
    names = set()
    for root, dirs, files in os.walk(os.path.join(REPO, folder)):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(root, name), encoding='utf-8') as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        names |= {alias.name.split('.')[0] for alias in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        names.add(node.module.split('.')[0])
    return names


def ros_packages(modules):
    """
    Return the ROS packages among imported modules.

    Those are the ones installed from a ROS wheel (ros-*), and launch, launch_ros and message
    packages, which may be missing from the pip environment.
    """
    from importlib.metadata import packages_distributions
    distributions = packages_distributions()
    return {m for m in modules
            if any(d.startswith('ros-') for d in distributions.get(m, ()))
            or m in ('launch', 'launch_ros') or m.endswith(('_msgs', '_interfaces'))}


@pytest.mark.filterwarnings('ignore::DeprecationWarning:catkin_pkg')
@pytest.mark.filterwarnings('ignore:.*deprecated.*')
def test_package_xml_declares_every_ros_package_the_code_and_tests_import():
    package = parsed_package_xml()
    package.evaluate_conditions({'HOBOT_NPU_INFER_VISION_MSGS': ''})
    runs = {d.name for d in package.exec_depends}
    tests = {d.name for d in package.test_depends}
    code = ros_packages(imported_top_level_modules(PACKAGE) | imported_top_level_modules('launch'))
    assert {'rclpy', 'rcl_interfaces', 'lifecycle_msgs', 'ament_index_python', 'launch'} <= code
    assert code - runs == set()
    built = set(TROS_PACKAGES)  # the tests build these themselves (test/tros_fixtures.py)
    assert ros_packages(imported_top_level_modules('test')) - runs - tests - built == set()


def console_scripts():
    return set(entry_points())


# The launch files, run against stand-ins of launch and launch_ros (test/launch_stand_ins.py):
# these tests show what each file hands to launch, not what launch then does with it.
CONFIGS = {'infer.launch.py': 'default.yaml', 'infer_lifecycle.launch.py': 'default.yaml',
           'multi_camera.launch.py': 'multi_camera.yaml',
           'multi_head.launch.py': 'multi_head.yaml'}
# The launch files that start nodes themselves; multi_head.launch.py includes infer.launch.py.
STARTING = ['infer.launch.py', 'infer_lifecycle.launch.py', 'multi_camera.launch.py']
PROFILE = os.path.join(REPO, 'config', 'fastdds_large_frames.xml')
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


def kind(action):
    return type(action).__name__


def include_of_multi_head(monkeypatch, **given):
    """
    Run multi_head.launch.py, then the file it includes with the arguments it passes.

    ``given`` stands for the command line. An included file sees the launch configurations of
    the including one (launch does not scope them), and those it is passed override them; the
    stand-ins resolve a passed LaunchConfiguration by hand, as launch would.
    """
    arguments, nodes, [declare, include] = run_launch_file(monkeypatch, 'multi_head.launch.py')
    assert nodes == [] and kind(declare) == 'DeclareLaunchArgument'
    [source] = include.args
    launch_file = source.args[0].args[0]
    assert launch_file[0].args == (PACKAGE,) and launch_file[1:] == ['launch', 'infer.launch.py']
    outer = {name: kwargs['default_value'] for name, kwargs in arguments.items()}
    outer.update(given)
    passed = {}
    for name, value in include.kwargs['launch_arguments']:
        [configuration] = value.args  # a LaunchConfiguration of the including file
        passed[name] = outer[configuration]
    return arguments, run_launch_file(monkeypatch, 'infer.launch.py', **{**given, **passed})


@pytest.mark.parametrize('launch_file', STARTING)
def test_launch_files_start_the_nodes_with_their_installed_config(monkeypatch, launch_file):
    arguments, nodes, _ = run_launch_file(monkeypatch, launch_file)
    installed = os.path.join(REPO, 'config', CONFIGS[launch_file])
    assert arguments['config']['default_value'] == installed and os.path.isfile(installed)
    assert {n['executable'] for n in nodes} <= console_scripts()
    assert 'image_source' in {n['executable'] for n in nodes}
    for node in nodes:
        assert node['package'] == PACKAGE
        assert node['parameters'] == [installed]


def test_multi_head_launch_is_the_infer_launch_with_its_config(monkeypatch):
    arguments, (_, nodes, _) = include_of_multi_head(monkeypatch)
    installed = os.path.join(REPO, 'config', 'multi_head.yaml')
    assert arguments['config']['default_value'] == installed and os.path.isfile(installed)
    assert {n['executable'] for n in nodes} == {'image_source', 'infer_node'}
    assert all(n['parameters'] == [installed] for n in nodes)


@pytest.mark.parametrize('launch_file', sorted(CONFIGS))
def test_every_launch_file_honours_the_config_given(monkeypatch, tmp_path, launch_file):
    mine = tmp_path / 'my.yaml'
    mine.write_text('{}\n')
    if launch_file == 'multi_head.launch.py':  # passed through the include, not replaced
        _, (_, nodes, _) = include_of_multi_head(monkeypatch, config=str(mine))
    else:
        _, nodes, _ = run_launch_file(monkeypatch, launch_file, config=str(mine))
    assert nodes and all(n['parameters'] == [str(mine)] for n in nodes)


def test_a_relative_config_is_made_absolute(monkeypatch, tmp_path):
    (tmp_path / 'my.yaml').write_text('{}\n')
    monkeypatch.chdir(tmp_path)
    _, nodes, _ = run_launch_file(monkeypatch, 'infer.launch.py', config='my.yaml')
    assert all(n['parameters'] == [str(tmp_path / 'my.yaml')] for n in nodes)


@pytest.mark.parametrize('launch_file', STARTING)
def test_a_missing_config_stops_the_launch_with_one_line(monkeypatch, launch_file):
    with pytest.raises(RuntimeError) as raised:
        run_launch_file(monkeypatch, launch_file, config='/no/such/params.yaml')
    assert str(raised.value) == 'config:=/no/such/params.yaml: no such parameters file'
    with pytest.raises(RuntimeError, match=r'^config is empty: it must name a parameters file$'):
        run_launch_file(monkeypatch, launch_file, config='')


def test_a_missing_config_given_to_multi_head_stops_the_launch(monkeypatch):
    with pytest.raises(RuntimeError, match='^config:=/no/such/params.yaml: no such'):
        include_of_multi_head(monkeypatch, config='/no/such/params.yaml')


@pytest.mark.parametrize('launch_file', sorted(CONFIGS))
def test_every_default_is_a_plain_value_show_args_prints_as_it_is(monkeypatch, launch_file):
    """
    Every default is text, so ``ros2 launch --show-args`` prints it as it is.

    ``--show-args`` prints a default through each substitution's ``describe()``: a text as
    itself in quotes, a PathJoinSubstitution of a FindPackageShare as a Python-like expression.
    """
    if launch_file == 'multi_head.launch.py':
        declared, (arguments, _, _) = include_of_multi_head(monkeypatch)
        arguments = {**arguments, **declared}  # the first declaration of a name is the one shown
    else:
        arguments, _, _ = run_launch_file(monkeypatch, launch_file)
    assert {'namespace', 'config', 'use_test_camera', 'dds_profile'} <= set(arguments)
    for name, kwargs in arguments.items():
        assert isinstance(kwargs['default_value'], str), name
        assert kwargs['description'], name


@pytest.mark.parametrize('launch_file', STARTING)
def test_every_node_gets_the_large_frames_profile(monkeypatch, launch_file):
    arguments, nodes, actions = run_launch_file(monkeypatch, launch_file)
    assert arguments['dds_profile']['default_value'] == PROFILE
    assert len(nodes) >= 2
    for node in nodes:
        assert node['additional_env'] == {name: PROFILE for name in PROFILE_VARIABLES}
    [note] = [a for a in actions if kind(a) == 'LogInfo']
    assert note.kwargs['msg'] == f'nodes use the Fast DDS profile {PROFILE}'


@pytest.mark.parametrize('rmw', ['rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp'])
def test_the_profile_follows_a_fast_dds_rmw_named(monkeypatch, rmw):
    _, nodes, _ = run_launch_file(monkeypatch, 'infer.launch.py',
                                  environment={'RMW_IMPLEMENTATION': rmw})
    assert all(n['additional_env'][PROFILE_VARIABLES[0]] == PROFILE for n in nodes)


def test_no_profile_for_another_rmw(monkeypatch):
    _, nodes, actions = run_launch_file(monkeypatch, 'infer.launch.py',
                                        environment={'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'})
    assert all(n['additional_env'] == {} for n in nodes)
    [note] = [a for a in actions if kind(a) == 'LogInfo']
    assert note.kwargs['msg'] == ('dds_profile not applied: RMW_IMPLEMENTATION='
                                  'rmw_cyclonedds_cpp is not Fast DDS')


@pytest.mark.parametrize('launch_file', STARTING)
def test_an_empty_dds_profile_keeps_the_environment(monkeypatch, launch_file):
    _, nodes, actions = run_launch_file(monkeypatch, launch_file, dds_profile='')
    assert nodes and all(n['additional_env'] == {} for n in nodes)
    assert [a for a in actions if kind(a) == 'LogInfo'] == []


def test_a_profile_of_the_environment_is_replaced_and_said_so(monkeypatch, tmp_path):
    mine = tmp_path / 'mine.xml'
    mine.write_text('<profiles/>\n')
    environment = {PROFILE_VARIABLES[0]: '/etc/robot/fastdds.xml'}
    _, nodes, actions = run_launch_file(monkeypatch, 'infer.launch.py', environment=environment)
    assert all(n['additional_env'][PROFILE_VARIABLES[0]] == PROFILE for n in nodes)
    [note] = [a for a in actions if kind(a) == 'LogInfo']
    assert note.kwargs['msg'].endswith(
        'instead of FASTRTPS_DEFAULT_PROFILES_FILE=/etc/robot/fastdds.xml of the environment '
        "(dds_profile:='' keeps it)")
    _, nodes, _ = run_launch_file(monkeypatch, 'infer.launch.py', environment=environment,
                                  dds_profile=str(mine))
    assert all(n['additional_env'] == {name: str(mine) for name in PROFILE_VARIABLES}
               for n in nodes)


def test_a_missing_dds_profile_stops_the_launch(monkeypatch):
    with pytest.raises(RuntimeError, match=r'^dds_profile:=/no/such.xml: no such Fast DDS '):
        run_launch_file(monkeypatch, 'infer.launch.py', dds_profile='/no/such.xml')


def test_the_large_frames_profile_has_a_big_segment_and_every_interface():
    """Shared memory for several 1280x720 frames; UDP on every interface, for other machines."""
    import xml.etree.ElementTree as ElementTree
    ns = {'p': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    root = ElementTree.parse(PROFILE).getroot()
    transports = {t.find('p:transport_id', ns).text: t
                  for t in root.findall('p:transport_descriptors/p:transport_descriptor', ns)}
    kinds = {name: t.find('p:type', ns).text for name, t in transports.items()}
    assert sorted(kinds.values()) == ['SHM', 'UDPv4']
    for name, transport in transports.items():
        if kinds[name] == 'SHM':
            assert int(transport.find('p:segment_size', ns).text) >= 8 * 1280 * 720 * 3
        else:  # no whitelist: not pinned to 127.0.0.1 like the tests' config/fastdds_shm.xml
            assert list(transport) == [transport.find('p:transport_id', ns),
                                       transport.find('p:type', ns)]
    [participant] = root.findall('p:participant', ns)
    assert participant.get('is_default_profile') == 'true'
    rtps = participant.find('p:rtps', ns)
    assert rtps.find('p:useBuiltinTransports', ns).text == 'false'
    assert [t.text for t in rtps.findall('p:userTransports/p:transport_id', ns)] == \
        list(transports)


@pytest.mark.parametrize('launch_file', ['infer.launch.py', 'infer_lifecycle.launch.py'])
def test_launch_remaps_the_camera_topic_of_both_nodes(monkeypatch, launch_file):
    _, nodes, _ = run_launch_file(monkeypatch, launch_file)
    assert len(nodes) == 2
    for node in nodes:
        [remap] = node['remappings']
        assert remap[0] == 'image_raw' and remap[1].args == ('image_topic',)


def test_infer_launch_starts_the_test_camera_and_infer_node(monkeypatch):
    _, nodes, _ = run_launch_file(monkeypatch, 'infer.launch.py')
    camera, infer = nodes
    assert (camera['executable'], infer['executable']) == ('image_source', 'infer_node')
    for node in nodes:
        assert node['name'] == node['executable'] and node['namespace'].args == ('namespace',)
    assert camera['condition'].args[0].args == ('use_test_camera',)
    assert 'condition' not in infer


def test_lifecycle_launch_starts_the_managed_node_and_configures_then_activates_it(monkeypatch):
    from lifecycle_msgs.msg import Transition
    arguments, nodes, actions = run_launch_file(monkeypatch, 'infer_lifecycle.launch.py')
    assert set(arguments) == {'namespace', 'image_topic', 'config', 'autostart',
                              'use_test_camera', 'dds_profile'}
    assert arguments['autostart']['default_value'] == 'true'
    [infer] = [a for a in actions if kind(a) == 'LifecycleNode']
    [camera] = [a for a in actions if kind(a) == 'Node']
    assert {n['executable'] for n in nodes} == {'image_source', 'infer_lifecycle_node'}
    assert {n['executable'] for n in nodes} <= console_scripts()
    # named infer_node: the keys of the parameters files match it
    assert infer.kwargs['name'] == 'infer_node' and camera.kwargs['name'] == 'image_source'
    assert infer.kwargs['namespace'].args == ('namespace',)  # launch_ros requires a namespace
    [configure] = [a for a in actions if kind(a) == 'EmitEvent']
    [handler] = [a for a in actions if kind(a) == 'RegisterEventHandler']
    # the node first, then the handler, then the configure event that leads to it
    assert actions.index(infer) < actions.index(handler) < actions.index(configure)
    # configure on launch; activate once the node reached inactive; both only with autostart
    event = configure.kwargs['event'].kwargs
    assert event['transition_id'] == Transition.TRANSITION_CONFIGURE
    assert event['lifecycle_node_matcher'].args == (infer,)
    on_inactive = handler.args[0].kwargs
    assert on_inactive['target_lifecycle_node'] is infer
    assert (on_inactive['start_state'], on_inactive['goal_state']) == ('configuring', 'inactive')
    assert on_inactive['handle_once'] is True
    [activate] = on_inactive['entities']
    assert activate.kwargs['event'].kwargs['transition_id'] == Transition.TRANSITION_ACTIVATE
    assert activate.kwargs['event'].kwargs['lifecycle_node_matcher'].args == (infer,)
    for action in (configure, handler):
        assert action.kwargs['condition'].args[0].args == ('autostart',)
    assert camera.kwargs['condition'].args[0].args == ('use_test_camera',)


def launch_file_tree(name):
    with open(os.path.join(REPO, 'launch', name)) as f:
        return ast.parse(f.read())


STARTS_NODES = {'checked_nodes', 'dds_profile_argument', 'use_test_camera_argument'}


@pytest.mark.parametrize('launch_file, shared', [
    ('infer.launch.py', STARTS_NODES | {'single_camera_arguments', 'camera_remappings'}),
    ('infer_lifecycle.launch.py', STARTS_NODES | {'single_camera_arguments',
                                                  'camera_remappings'}),
    ('multi_camera.launch.py', STARTS_NODES | {'namespace_argument', 'config_argument'}),
    ('multi_head.launch.py', {'config_argument'}),
])
def test_launch_files_take_the_shared_arguments_from_one_module(launch_file, shared):
    tree = launch_file_tree(launch_file)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == LAUNCH_ARGUMENTS for alias in node.names}
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert shared <= imported & called
    # only an argument no other launch file takes is declared in the file itself
    declared_here = {node.args[0].value for node in ast.walk(tree)
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                     and node.func.id == 'DeclareLaunchArgument'}
    assert declared_here <= {'autostart'}


def test_one_camera_launch_files_declare_the_same_shared_arguments(monkeypatch):
    infer, _, _ = run_launch_file(monkeypatch, 'infer.launch.py')
    lifecycle, _, _ = run_launch_file(monkeypatch, 'infer_lifecycle.launch.py')
    assert {k: v for k, v in lifecycle.items() if k != 'autostart'} == infer
    assert infer['image_topic'] == {'default_value': 'image_raw',
                                    'description': 'camera topic published and subscribed'}
    assert infer['use_test_camera']['default_value'] == 'true'
    assert infer['namespace']['default_value'] == ''


def test_multi_camera_launch_starts_the_test_camera_on_request(monkeypatch):
    arguments, nodes, _ = run_launch_file(monkeypatch, 'multi_camera.launch.py')
    assert set(arguments) == {'namespace', 'use_test_camera', 'config', 'dds_profile'}
    [camera] = [n for n in nodes if n['executable'] == 'image_source']
    assert camera['condition'].args[0].args == ('use_test_camera',)
    assert {n['executable'] for n in nodes} == {'image_source', 'infer_node'}


def flatten(params, prefix=''):
    """
    Yield the ROS parameter names of a nested YAML dict.

    heads: {faces: {rate_hz}} -> heads.faces.rate_hz
    """
    for key, value in params.items():
        if isinstance(value, dict):
            yield from flatten(value, f'{prefix}{key}.')
        else:
            yield prefix + key


@pytest.mark.parametrize('config_file', ['default.yaml', 'multi_camera.yaml', 'multi_head.yaml'])
def test_config_files_name_declared_parameters(config_file):
    from hobot_npu_infer.ros import image_source, infer_parameters
    with open(os.path.join(REPO, 'config', config_file)) as f:
        config = yaml.safe_load(f)
    for key, module in (('/**/infer_node', infer_parameters),
                        ('/**/image_source', image_source)):
        params = config[key]['ros__parameters']
        declared = {p.name for p in module.PARAMETERS}
        declared |= {p.name for head in params.get('head_names', ())
                     for p in infer_parameters.head_parameters(head)}
        given = set(flatten(params))
        assert given <= declared, given - declared
