"""
The launch files run against stand-ins for ``launch`` and ``launch_ros``.

Neither is installable in the pip environment. Each launch file runs here against stand-in
modules whose classes only record their arguments, and its OpaqueFunction is called with a
stand-in launch context, as ``ros2 launch`` would call it at launch time. That shows what the
launch files hand to launch: which nodes, with which names, parameters file, remapping,
condition and environment, which arguments with which defaults, and the errors they raise.

It cannot show what launch does with them: that an included file sees the arguments passed to
it, that a declared default leaves a value given on the command line alone, how
``--show-args`` prints a default, how ``ros2 launch`` reports an exception, or that
``additional_env`` reaches the started process. Those are launch's documented behaviour; only
a real ``ros2 launch`` proves them.
"""

import os
import sys
import types

from conftest import REPO

PACKAGE = 'hobot_npu_infer'
LAUNCH_ARGUMENTS = f'{PACKAGE}.ros.launch_arguments'


class Recorder:
    """Stands in for a launch action class and keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def stand_ins(*names):
    """Make a module of Recorder classes, each named as the class it stands in for."""
    return types.SimpleNamespace(**{name: type(name, (Recorder,), {}) for name in names})


STAND_INS = {
    'launch': ('LaunchDescription',),
    'launch.actions': ('DeclareLaunchArgument', 'IncludeLaunchDescription', 'EmitEvent',
                       'RegisterEventHandler', 'LogInfo', 'OpaqueFunction'),
    'launch.events': ('matches_action',),
    'launch.launch_description_sources': ('PythonLaunchDescriptionSource',),
    'launch.conditions': ('IfCondition',),
    'launch.substitutions': ('LaunchConfiguration', 'PathJoinSubstitution'),
    'launch_ros.actions': ('Node', 'LifecycleNode'),
    'launch_ros.event_handlers': ('OnStateTransition',),
    'launch_ros.events.lifecycle': ('ChangeState',),
    'launch_ros.substitutions': ('FindPackageShare',),
}


def share_directory(package):
    """Stand in for ament_index's share directory: the source tree holds launch/ and config/."""
    assert package == PACKAGE, package
    return REPO


def launch_context(arguments, given, environment):
    """
    Return a stand-in launch context: the declared defaults, overridden by ``given``.

    As launch has it once every DeclareLaunchArgument ran: a value given on the command line
    (or by an including file) stays, a declared default fills the others.
    """
    configurations = {name: kwargs.get('default_value') for name, kwargs in arguments.items()}
    configurations.update(given)
    return types.SimpleNamespace(launch_configurations=configurations,
                                 environment=dict(environment or {}))


def run_launch_file(monkeypatch, name, environment=None, **given):
    """
    Read a launch file against the stand-ins and start it with ``given`` arguments.

    Return (arguments, nodes, actions): the declared arguments {name: keyword arguments}, the
    keyword arguments of every node started, and the actions (those of the launch description,
    then those its OpaqueFunction returned in a context of the declared defaults, ``given``
    and ``environment``). What that function raises, this raises.
    """
    for module_name, names in STAND_INS.items():
        monkeypatch.setitem(sys.modules, module_name, stand_ins(*names))
    monkeypatch.setattr('ament_index_python.packages.get_package_share_directory',
                        share_directory)
    # The shared declarations are imported afresh, against these stand-ins.
    monkeypatch.delitem(sys.modules, LAUNCH_ARGUMENTS, raising=False)
    namespace = {}
    path = os.path.join(REPO, 'launch', name)
    with open(path) as f:
        exec(compile(f.read(), path, 'exec'), namespace)
    [actions] = namespace['generate_launch_description']().args
    arguments = {a.args[0]: a.kwargs for a in actions
                 if type(a).__name__ == 'DeclareLaunchArgument'}
    context = launch_context(arguments, given, environment)
    started = []
    for action in actions:
        if type(action).__name__ == 'OpaqueFunction':
            started += action.kwargs['function'](context)
    actions = list(actions) + started
    nodes = [a.kwargs for a in actions if 'package' in a.kwargs]
    return arguments, nodes, actions
