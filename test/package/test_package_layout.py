"""The ament_python layout, proven by a real colcon build, and the launch file's wiring."""

import ast
import os
import shutil
import subprocess
import sys
import types

from conftest import REPO
from project_files import console_scripts as entry_points
import pytest
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
    for name in ('default.yaml', 'multi_camera.yaml', 'multi_head.yaml', 'fastdds_shm.xml'):
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
    assert ros_packages(imported_top_level_modules('test')) - runs - tests == set()


def console_scripts():
    return set(entry_points())


class Recorder:
    """Stands in for a launch action class and keeps its keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def stand_ins(*names):
    """Make a module of Recorder classes, each named as the class it stands in for."""
    return types.SimpleNamespace(**{name: type(name, (Recorder,), {}) for name in names})


def run_launch_file(monkeypatch, name):
    """
    Run a launch file against stand-ins for launch and launch_ros.

    launch and launch_ros are not installable here: the file runs against stand-ins with
    the same names, which is enough to check what it starts and with which arguments.
    """
    modules = {
        'launch': stand_ins('LaunchDescription'),
        'launch.actions': stand_ins('DeclareLaunchArgument', 'IncludeLaunchDescription',
                                    'EmitEvent', 'RegisterEventHandler'),
        'launch.events': stand_ins('matches_action'),
        'launch.launch_description_sources': stand_ins('PythonLaunchDescriptionSource'),
        'launch.conditions': stand_ins('IfCondition'),
        'launch.substitutions': stand_ins('LaunchConfiguration', 'PathJoinSubstitution'),
        'launch_ros.actions': stand_ins('Node', 'LifecycleNode'),
        'launch_ros.event_handlers': stand_ins('OnStateTransition'),
        'launch_ros.events.lifecycle': stand_ins('ChangeState'),
        'launch_ros.substitutions': stand_ins('FindPackageShare'),
    }
    for module_name, module in modules.items():
        monkeypatch.setitem(sys.modules, module_name, module)
    # The shared declarations are imported afresh, against these stand-ins.
    monkeypatch.delitem(sys.modules, LAUNCH_ARGUMENTS, raising=False)
    namespace = {}
    path = os.path.join(REPO, 'launch', name)
    with open(path) as f:
        exec(compile(f.read(), path, 'exec'), namespace)
    [actions] = namespace['generate_launch_description']().args
    arguments = {a.args[0]: a.kwargs for a in actions
                 if type(a).__name__ == 'DeclareLaunchArgument'}
    nodes = [a.kwargs for a in actions if 'package' in a.kwargs]
    return arguments, nodes, actions


@pytest.mark.parametrize('launch_file, config, arguments_expected', [
    ('infer.launch.py', 'default.yaml', {'namespace', 'image_topic', 'use_test_camera', 'config'}),
    ('multi_camera.launch.py', 'multi_camera.yaml', {'namespace', 'use_test_camera', 'config'}),
])
def test_launch_files_start_the_nodes_with_the_installed_config(monkeypatch, launch_file, config,
                                                                arguments_expected):
    arguments, nodes, _ = run_launch_file(monkeypatch, launch_file)
    assert set(arguments) == arguments_expected
    config_path = arguments['config']['default_value'].args[0]
    assert config_path[0].args == (PACKAGE,) and config_path[1:] == ['config', config]
    assert os.path.isfile(os.path.join(REPO, 'config', config))
    assert {n['executable'] for n in nodes} == {'image_source', 'infer_node'}
    assert {n['executable'] for n in nodes} <= console_scripts()
    for node in nodes:
        assert node['package'] == PACKAGE and node['name'] == node['executable']
        assert [p.args for p in node['parameters']] == [('config',)]


def test_multi_head_launch_is_the_infer_launch_with_its_config(monkeypatch):
    arguments, nodes, [include] = run_launch_file(monkeypatch, 'multi_head.launch.py')
    assert arguments == {} and nodes == []
    source, = include.args
    assert source.args[0].args[0][1:] == ['launch', 'infer.launch.py']
    [(key, config)] = list(include.kwargs['launch_arguments'])
    assert key == 'config' and config.args[0][1:] == ['config', 'multi_head.yaml']
    assert os.path.isfile(os.path.join(REPO, 'config', 'multi_head.yaml'))


@pytest.mark.parametrize('launch_file', ['infer.launch.py', 'infer_lifecycle.launch.py'])
def test_launch_remaps_the_camera_topic_of_both_nodes(monkeypatch, launch_file):
    _, nodes, _ = run_launch_file(monkeypatch, launch_file)
    for node in nodes:
        [remap] = node['remappings']
        assert remap[0] == 'image_raw' and remap[1].args == ('image_topic',)


def test_lifecycle_launch_starts_the_managed_node_and_configures_then_activates_it(monkeypatch):
    from lifecycle_msgs.msg import Transition
    arguments, nodes, actions = run_launch_file(monkeypatch, 'infer_lifecycle.launch.py')
    assert set(arguments) == {'namespace', 'image_topic', 'config', 'autostart',
                              'use_test_camera'}
    assert arguments['autostart']['default_value'] == 'true'
    config_path = arguments['config']['default_value'].args[0]
    assert config_path[0].args == (PACKAGE,) and config_path[1:] == ['config', 'default.yaml']
    [infer] = [a for a in actions if type(a).__name__ == 'LifecycleNode']
    [camera] = [a for a in actions if type(a).__name__ == 'Node']
    assert {n['executable'] for n in nodes} == {'image_source', 'infer_lifecycle_node'}
    assert {n['executable'] for n in nodes} <= console_scripts()
    # named infer_node: the keys of the parameters files match it
    assert infer.kwargs['name'] == 'infer_node' and camera.kwargs['name'] == 'image_source'
    assert infer.kwargs['namespace'].args == ('namespace',)  # launch_ros requires a namespace
    for node in (infer, camera):
        assert node.kwargs['package'] == PACKAGE
        assert [p.args for p in node.kwargs['parameters']] == [('config',)]
    [configure] = [a for a in actions if type(a).__name__ == 'EmitEvent']
    [handler] = [a for a in actions if type(a).__name__ == 'RegisterEventHandler']
    # configure on launch; activate once the node reached inactive; both only with autostart
    event = configure.kwargs['event'].kwargs
    assert event['transition_id'] == Transition.TRANSITION_CONFIGURE
    assert event['lifecycle_node_matcher'].args == (infer,)
    on_inactive = handler.args[0].kwargs
    assert on_inactive['target_lifecycle_node'] is infer
    assert (on_inactive['start_state'], on_inactive['goal_state']) == ('configuring', 'inactive')
    [activate] = on_inactive['entities']
    assert activate.kwargs['event'].kwargs['transition_id'] == Transition.TRANSITION_ACTIVATE
    assert activate.kwargs['event'].kwargs['lifecycle_node_matcher'].args == (infer,)
    for action in (configure, handler):
        assert action.kwargs['condition'].args[0].args == ('autostart',)
    assert camera.kwargs['condition'].args[0].args == ('use_test_camera',)


def launch_file_tree(name):
    with open(os.path.join(REPO, 'launch', name)) as f:
        return ast.parse(f.read())


@pytest.mark.parametrize('launch_file, shared', [
    ('infer.launch.py', {'single_camera_arguments', 'use_test_camera_argument',
                         'camera_remappings'}),
    ('infer_lifecycle.launch.py', {'single_camera_arguments', 'use_test_camera_argument',
                                   'camera_remappings'}),
    ('multi_camera.launch.py', {'namespace_argument', 'use_test_camera_argument',
                                'config_argument'}),
    ('multi_head.launch.py', {'installed_config'}),
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
    assert {k: v for k, v in lifecycle.items() if k != 'autostart'}.keys() == infer.keys()
    for name in ('namespace', 'image_topic', 'use_test_camera'):
        assert lifecycle[name] == infer[name]
    assert infer['image_topic'] == {'default_value': 'image_raw',
                                    'description': 'camera topic published and subscribed'}
    assert infer['use_test_camera']['default_value'] == 'true'
    assert infer['namespace']['default_value'] == ''


def test_multi_camera_launch_starts_the_test_camera_on_request(monkeypatch):
    _, nodes, _ = run_launch_file(monkeypatch, 'multi_camera.launch.py')
    [camera] = [n for n in nodes if n['executable'] == 'image_source']
    assert camera['condition'].args[0].args == ('use_test_camera',)


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
