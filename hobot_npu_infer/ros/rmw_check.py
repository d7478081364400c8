"""
The RMW implementation asked for, checked before rclpy loads, and the program's name.

rcl checks RMW_IMPLEMENTATION as its library loads and ends the process from C when it cannot
be used: no Python error to catch, and a line of rcl's own. Every executable of the package
imports param_specs before anything else of rclpy, and param_specs calls :func:`require_rmw`
first, so the failure becomes one line naming the variable.
"""

import os
import re
import subprocess
import sys

RMW_VARIABLES = ('RMW_IMPLEMENTATION', 'RCL_ASSERT_RMW_ID_MATCHES')


def program_name() -> str:
    """Return this process's executable, e.g. ``infer_node`` (also run as ``python -m``)."""
    argv = getattr(sys, 'argv', None) or ['python']
    return os.path.splitext(os.path.basename(argv[0] or 'python'))[0]


def require_rmw() -> None:
    """
    Exit 2 with one line when the RMW implementation asked for cannot be used.

    rcl checks RMW_IMPLEMENTATION (and RCL_ASSERT_RMW_ID_MATCHES) as its library loads, on the
    first import of rclpy, and ends the process right there (exit code 102 or 1, after a log
    line of its own). So while rclpy is not loaded yet and either variable is set, a child
    interpreter loads it first; when rcl ends that one over the RMW implementation, this
    process says so in one line and exits. This module is the first of the package to import
    rclpy in every executable, hence the check here, before its imports.
    """
    variable = next((name for name in RMW_VARIABLES if os.environ.get(name)), None)
    if variable is None or 'rclpy.impl.implementation_singleton' in sys.modules:
        return
    try:
        probe = subprocess.run(
            [sys.executable, '-c', 'import rclpy.impl.implementation_singleton'],
            capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return  # the import below will tell
    if probe.returncode == 0 or 'Traceback' in probe.stderr or '[rcl]' not in probe.stderr:
        return  # not rcl's check: the import below will tell
    wanted = os.environ[variable]
    if 'do not match' in probe.stderr:
        problem = (f"RMW_IMPLEMENTATION ('{os.environ.get('RMW_IMPLEMENTATION', '')}') and "
                   f"RCL_ASSERT_RMW_ID_MATCHES ('{os.environ.get('RCL_ASSERT_RMW_ID_MATCHES', '')}"
                   f"') differ")
    else:
        found = re.search(r"instead found '([^']+)'", probe.stderr)
        installed = f'; this rclpy uses {found[1]}' if found else ''
        problem = f"RMW implementation '{wanted}' is not installed ({variable}{installed})"
    print(f'{program_name()}: {problem}', file=sys.stderr)
    raise SystemExit(2)
