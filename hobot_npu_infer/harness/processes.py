"""
Our executables in child processes, on the loopback DDS environment.

Used by the demo, the node benchmark and the integration tests.
"""

from importlib.metadata import entry_points
import signal
import subprocess
import sys
from typing import Dict, List, Optional

from hobot_npu_infer.harness.ros_env import child_environment


def ros_value(value) -> str:
    """Format a Python value as a ``-p name:=value`` override."""
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(ros_value(v) for v in value) + ']'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def executable_module(executable: str) -> str:
    """
    Return the module behind one of the package's console scripts.

    setup.py is the one table.
    """
    found = entry_points(group='console_scripts', name=executable)
    for entry in found:
        if entry.module.startswith('hobot_npu_infer.'):
            return entry.module
    raise ValueError(f'hobot_npu_infer has no executable named {executable!r}')


class RosProcess:
    """
    One of the package's executables (a console script, by name) in a child process.

    It runs as ``python -m MODULE [args] --ros-args [--params-file F] -p ...``, so in this
    interpreter's venv.
    """

    def __init__(self, executable: str, params: Optional[Dict[str, object]] = None,
                 args: Optional[List[str]] = None, params_file: str = '',
                 log_path: Optional[str] = None, stdout=None, cwd: Optional[str] = None,
                 node_name: str = '', env: Optional[Dict[str, str]] = None):
        cmd = [sys.executable, '-m', executable_module(executable), *(args or []), '--ros-args']
        if node_name:
            cmd += ['-r', f'__node:={node_name}']
        if params_file:
            cmd += ['--params-file', params_file]
        for name, value in (params or {}).items():
            cmd += ['-p', f'{name}:={ros_value(value)}']
        self.log_path = log_path
        self._log = open(log_path, 'w') if log_path else None
        out = self._log if self._log else (stdout if stdout is not None else subprocess.DEVNULL)
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=child_environment(**(env or {})),
                                     stdout=out,
                                     stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout: float = 15.0) -> int:
        """Signal, wait, and kill only if it does not end; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def output(self) -> str:
        if not self.log_path:
            return ''
        with open(self.log_path) as f:
            return f.read()
