"""
Start-up in a hostile environment: one line naming the problem, exit 2, no traceback.

Every executable that starts ROS, run as a child process: a home where rcl cannot make its log
directory, an unwritable ROS_LOG_DIR, ROS arguments that do not parse, an RMW implementation
that is not installed (rcl ends the process as rclpy loads, so it is checked before), a domain
ID the DDS cannot take, and one of rclpy's own parameters of the wrong type.
"""

import os
import subprocess
import sys

from hobot_npu_infer.harness.processes import executable_module
import pytest
from ros_harness import child_environment

EXECUTABLES = ('infer_node', 'infer_lifecycle_node', 'image_source', 'diag_monitor',
               'lifecycle_ctl')
OWN_ARGS = {'diag_monitor': ['--once', '--timeout', '1'], 'lifecycle_ctl': ['nodes']}
ROS_LOG_VARIABLES = ('ROS_LOG_DIR', 'ROS_HOME')


def start(executable, ros_args=(), unset=(), **env):
    """Run ``executable`` to its end; the one line it printed (stdout and stderr)."""
    cmd = [sys.executable, '-m', executable_module(executable), *OWN_ARGS.get(executable, []),
           *ros_args]
    environment = child_environment(**env)
    for name in unset:
        environment.pop(name, None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=environment)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert 'Traceback' not in output, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].strip(), output
    return lines[0]


@pytest.fixture
def unwritable(tmp_path):
    """
    Return a directory path nobody can write in.

    A read-only directory, or as root (who writes anywhere) a path under a regular file, which
    not even root can make.
    """
    if os.geteuid() == 0:
        blocker = tmp_path / 'a_file'
        blocker.write_text('')
        yield str(blocker / 'sub')
        return
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o500)
    yield str(read_only)
    read_only.chmod(0o700)


@pytest.mark.parametrize('executable', EXECUTABLES)
def test_a_home_without_a_log_directory(executable, unwritable):
    line = start(executable, unset=ROS_LOG_VARIABLES, HOME=unwritable)
    log = os.path.join(unwritable, '.ros', 'log')
    assert line.startswith(f'{executable}: cannot start ROS: log directory {log} is not '
                           f'writable: '), line
    assert line.endswith('(set ROS_LOG_DIR or ROS_HOME to a writable directory)'), line


def test_an_unwritable_ros_log_dir(unwritable):
    line = start('infer_node', unset=('ROS_HOME',), ROS_LOG_DIR=unwritable)
    assert line.startswith(f'infer_node: cannot start ROS: log directory {unwritable} '
                           f'(ROS_LOG_DIR) is not writable: '), line
    assert line.endswith('(set ROS_LOG_DIR to a writable directory)'), line


@pytest.mark.parametrize('ros_args, expected', [
    (['-p'], 'nothing after -p (expected -p NAME:=VALUE)'),
    (['-r'], 'nothing after -r (expected -r FROM:=TO)'),
    (['--bogus'], 'unknown ROS argument --bogus'),
    (['--bogus', '--other'], 'unknown ROS arguments --bogus --other'),
    (['-r', 'foo'], "cannot parse remap rule '-r foo': expected -r FROM:=TO (ROS names: "
                    'letters, digits, _ and /)'),
    (['-r', '__ns:=relative'], "cannot parse remap rule '-r __ns:=relative': Namespace not "
                               'remapped to a fully qualified name (found: relative)'),
    (['-p', 'foo'], "cannot parse parameter override rule '-p foo': expected -p NAME:=VALUE "
                    '(NAME: letters, digits, _ and .)'),
    (['--params-file', '/no/such/params.yaml'],
     "cannot parse params file '--params-file /no/such/params.yaml': Error opening YAML file"),
    (['--log-level', 'loud'], "cannot parse log level '--log-level loud'"),
])
def test_bad_ros_arguments(ros_args, expected):
    line = start('infer_node', ['--ros-args', *ros_args])
    assert line.startswith(f'infer_node: bad ROS arguments: {expected}'), line


@pytest.mark.parametrize('executable', EXECUTABLES[1:])
def test_bad_ros_arguments_of_every_executable(executable):
    for ros_args, expected in ((['--bogus'], 'unknown ROS argument --bogus'),
                               (['-p'], 'nothing after -p')):
        line = start(executable, ['--ros-args', *ros_args])
        assert line.startswith(f'{executable}: bad ROS arguments: {expected}'), line


@pytest.mark.parametrize('executable', EXECUTABLES)
def test_an_rmw_implementation_that_is_not_installed(executable):
    line = start(executable, RMW_IMPLEMENTATION='rmw_nope')
    assert line.startswith(f"{executable}: RMW implementation 'rmw_nope' is not installed "
                           f'(RMW_IMPLEMENTATION'), line


@pytest.mark.parametrize('executable', ['infer_node', 'lifecycle_ctl'])
def test_a_domain_id_out_of_range(executable):
    assert start(executable, ROS_DOMAIN_ID='300') == \
        f'{executable}: cannot start ROS: ROS_DOMAIN_ID=300 is out of range 0..232'
    assert start(executable, ROS_DOMAIN_ID='seven') == \
        f'{executable}: cannot start ROS: ROS_DOMAIN_ID is not an integral number'


def test_an_rclpy_parameter_of_the_wrong_type_names_it():
    line = start('infer_node', ['--ros-args', '-p', 'use_sim_time:=5'])
    assert line.startswith('error: ') and 'use_sim_time' in line and 'BOOL' in line, line
