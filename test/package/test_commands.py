"""
The user commands.

Every user command is a console script (`ros2 run hobot_npu_infer NAME`, .venv/bin/NAME) and a
`python -m` module; both answer --help with a usage, and a user's mistake with one line.
"""

import importlib
import os
import re
import sys

from conftest import REPO
from project_files import (
    BIN,
    console_scripts,
    module_path,
    PACKAGE,
    package_modules,
    ROS_NODES,
    run,
)
import pytest

COMMANDS = {
    'infer_node': 'ros.infer_node',
    'infer_lifecycle_node': 'ros.infer_lifecycle_node',
    'image_source': 'ros.image_source',
    'detect': 'tools.detect',
    'compare': 'tools.compare',
    'model_info': 'tools.model_info',
    'rknn_convert': 'tools.rknn_convert',
    'demo': 'tools.demo',
    'diag_monitor': 'tools.diag_monitor',
    'lifecycle_ctl': 'tools.lifecycle_ctl',
    'batch_bench': 'bench.batch_bench',
    'head_bench': 'bench.head_bench',
    'soak_bench': 'bench.soak_bench',
    'peer_bench': 'bench.peer_bench',
    'tracking_bench': 'bench.tracking_bench',
}
# Run with `python -m` by another of the package's processes, not by a user.
# run by the package itself, not by users: the simulator's worker, the benchmarks' hostile camera
# and their Ultralytics peer (in the Ultralytics environment)
INTERNAL = {'hobot_npu_infer/core/backends/rknn/simulator_worker.py',
            'hobot_npu_infer/harness/hostile_camera.py',
            'hobot_npu_infer/harness/ultralytics_peer.py'}
# A ROS node that ignored --help would start and spin: well within this it has answered.
HELP_TIMEOUT_S = 20

# A user's mistake for each command: (arguments, exit code). No model file, no ROS graph needed.
MISTAKES = {
    'infer_node': (['--ros-args', '-p', 'model:=no_such_model'], 2),
    'infer_lifecycle_node': (['--ros-args', '-p', 'threads:=-1'], 2),
    'image_source': (['--ros-args', '-p', 'encoding:=nope'], 2),
    'detect': (['--model', 'no_such_model', 'x.png'], 2),
    'compare': (['--model', 'no_such_model', 'x.png'], 2),
    'model_info': (['no_such_model'], 2),
    'rknn_convert': (['no_such_model', '-o', 'never-written.rknn'], 2),
    'demo': (['--seconds', '0'], 2),
    'diag_monitor': (['--once', '--timeout', '1'], 1),  # no node publishes diagnostics
    'lifecycle_ctl': (['get', '/no_such_node', '--timeout', '1'], 2),
    'batch_bench': (['--seconds', '0'], 2),
    'head_bench': (['--seconds', '0'], 2),
    'soak_bench': (['--minutes', '0'], 2),
    'peer_bench': (['--rounds', '0'], 2),
    'tracking_bench': (['--frames', '1'], 2),
}


def forms(name):
    """Return the two ways to run a command: the console script and `python -m`."""
    module, _ = console_scripts()[name]
    return {'script': [os.path.join(BIN, name)], 'module': [sys.executable, '-m', module]}


def test_every_command_is_a_console_script_of_its_module():
    scripts = console_scripts()
    assert {name: module for name, (module, _) in scripts.items()} == \
        {name: f'{PACKAGE}.{module}' for name, module in COMMANDS.items()}
    for name, (module, function) in scripts.items():
        assert module_path(module), f'{name}: no module {module}'
        entry = vars(importlib.import_module(module)).get(function)
        assert callable(entry), f'{name}: {module} has no {function}()'


def test_every_runnable_module_is_a_command():
    """A module with a __main__ block is something a user runs: it needs its console script."""
    commands = {module_path(module) for module, _ in console_scripts().values()}
    for relative in package_modules():
        with open(os.path.join(REPO, relative)) as f:
            runnable = "__name__ == '__main__'" in f.read()
        path = os.path.join(REPO, relative)
        if runnable and relative not in INTERNAL:
            assert path in commands, f'{relative} runs as a program but has no console script'


def test_node_bench_is_reached_through_batch_bench():
    with open(module_path(f'{PACKAGE}.bench.batch_bench')) as f:
        assert f'{PACKAGE}.bench.node_bench' in f.read()
    code, out = run([sys.executable, '-m', f'{PACKAGE}.bench.batch_bench', '--help'])
    assert code == 0 and '--node' in out


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_console_script_is_installed_in_the_venv(name):
    path = os.path.join(BIN, name)
    assert os.path.isfile(path) and os.access(path, os.X_OK), \
        f'{path} missing: `pip install --no-deps -e .` (make venv) installs the console scripts'


@pytest.mark.parametrize('form', ['script', 'module'])
@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_help_prints_a_usage_and_exits_0(name, form):
    code, out = run(forms(name)[form] + ['--help'], timeout=HELP_TIMEOUT_S)
    assert code is not None, f'{name} --help did not answer in {HELP_TIMEOUT_S} s: it ran ' \
        f'instead of printing its usage\n{out}'
    assert code == 0, out
    assert re.search(r'^usage:', out, re.M | re.I), out
    if name in ROS_NODES:  # parameters, not options: say how to give them
        assert '--ros-args' in out and '--params-file' in out and ':=' in out, out


@pytest.mark.parametrize('form', ['script', 'module'])
@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_a_users_mistake_is_one_line_and_no_traceback(name, form):
    args, expected = MISTAKES[name]
    code, out = run(forms(name)[form] + args)
    assert 'Traceback' not in out, out
    assert code == expected, out
    assert out.strip().splitlines()[-1].startswith('error: '), out
    assert not os.path.exists(os.path.join(REPO, 'never-written.rknn'))
