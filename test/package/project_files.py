"""
What the package tests read from the project's own files.

What the package tests read from the project's own files: setup.py's commands, the docs'
code blocks, and each command's --help (run once per command and kept).
"""

import ast
import functools
import glob
import os
import re
import shlex
import signal
import subprocess
import sys

from conftest import REPO

PACKAGE = 'hobot_npu_infer'
BIN = os.path.dirname(sys.executable)  # .venv/bin: where `pip install -e .` puts the scripts
ROS_NODES = ('infer_node', 'infer_lifecycle_node', 'image_source')
VENV_TOOLS = ('python', 'pip', 'pytest', 'colcon')  # .venv/bin/ names that are not ours
ENTRY = re.compile(r'^\s*([\w-]+)\s*=\s*([\w.]+):(\w+)\s*$')


def console_scripts():
    """setup.py's console scripts: {name: (module, function)}, read without running setup.py."""
    with open(os.path.join(REPO, 'setup.py')) as f:
        tree = ast.parse(f.read())
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = ENTRY.match(node.value)
            if match and match.group(2).startswith(PACKAGE + '.'):
                scripts[match.group(1)] = (match.group(2), match.group(3))
    return scripts


def module_path(module):
    """Return the source file of a dotted module name of the package, or None if there is none."""
    base = os.path.join(REPO, *module.split('.'))
    for path in (base + '.py', os.path.join(base, '__main__.py')):
        if os.path.isfile(path):
            return path
    return None


def package_modules():
    """Every .py file of the package, relative to the repository, without caches."""
    found = []
    for root, dirs, files in os.walk(os.path.join(REPO, PACKAGE)):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        found += [os.path.relpath(os.path.join(root, f), REPO) for f in files
                  if f.endswith('.py')]
    return sorted(found)


def markdown_files():
    """README.md and every page under docs/, relative to the repository."""
    pages = glob.glob(os.path.join(REPO, 'docs', '**', '*.md'), recursive=True)
    return ['README.md'] + sorted(os.path.relpath(p, REPO) for p in pages)


def read(relative):
    with open(os.path.join(REPO, relative), encoding='utf-8') as f:
        return f.read()


def code_blocks(text):
    """Fenced code blocks as (language, body) pairs, in order."""
    return re.findall(r'^```(\w*)\n(.*?)^```', text, re.M | re.S)


def shell_lines(text):
    """Return the command lines of a markdown text's shell code blocks, continuations joined."""
    lines = []
    for language, body in code_blocks(text):
        if language in ('sh', 'bash', 'shell'):
            lines += body.replace('\\\n', ' ').splitlines()
    return [line for line in lines if line.strip()]


def commands(line):
    """Split a shell line into simple commands, as token lists: at ; & | and comments cut."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=';&|')
    lexer.whitespace_split = True
    segments, current = [], []
    for token in lexer:
        if set(token) <= set(';&|'):
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    result = []
    for tokens in segments:
        while tokens and (tokens[0] in ('do', 'then', 'sudo') or '=' in tokens[0]
                          and not tokens[0].startswith('-')):
            tokens = tokens[1:]  # `do CMD`, `VAR=value CMD`
        if tokens:
            result.append(tokens)
    return result


def invocation(tokens):
    """
    Return (command name, its arguments) when the tokens run one of the package's commands.

    The commands run as ``python -m hobot_npu_infer.X``, ``.venv/bin/NAME``,
    ``ros2 run hobot_npu_infer NAME`` or ``NAME``; the command is a module name or a console
    script name. None otherwise.
    """
    first = tokens[0]
    if os.path.basename(first).startswith('python') and tokens[1:2] == ['-m'] and \
            len(tokens) > 2 and tokens[2].startswith(PACKAGE):
        return tokens[2], tokens[3:]
    if tokens[:3] == ['ros2', 'run', PACKAGE] and len(tokens) > 3:
        return tokens[3], tokens[4:]
    if first.startswith('.venv/bin/') and not os.path.basename(first).startswith(VENV_TOOLS):
        return os.path.basename(first), tokens[1:]
    if first in console_scripts():
        return first, tokens[1:]
    return None


def run(argv, timeout=60):
    """
    Run a command from the repository.

    Returns (exit code, stdout + stderr), or (None, its output) when it did not end within
    ``timeout`` seconds: it is then stopped with SIGINT, as a user would, and killed only if
    that does not end it.
    """
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return None, out


@functools.lru_cache(maxsize=None)
def help_text(module, *subcommand):
    """``python -m module [subcommand] --help``: the options a command takes."""
    code, out = run([sys.executable, '-m', module, *subcommand, '--help'])
    assert code == 0, f'{module} {" ".join(subcommand)} --help: exit {code}\n{out}'
    return out
