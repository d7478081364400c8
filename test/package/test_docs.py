"""
The documentation, checked against the code.

README.md and docs/ checked against the code, so they cannot drift: the module tree, the
parameter tables, every command, option, launch argument and parameter shown in a shell block,
every `python -m`, every link and every file path named.
"""

import os
import re
import shlex

from conftest import REPO
from project_files import (
    code_blocks,
    commands,
    console_scripts,
    help_text,
    invocation,
    markdown_files,
    module_path,
    PACKAGE,
    package_modules,
    read,
    ROS_NODES,
    shell_lines,
)
import pytest
from test_package_layout import run_launch_file

LAYOUT_PAGE = 'docs/layout.md'
PARAMETERS_PAGE = 'docs/parameters.md'
# The first folder of a path the docs name, relative to the repository or to the package.
REPO_FOLDERS = ('hobot_npu_infer', 'launch', 'config', 'docs', 'test', 'resource', '.ci')
PACKAGE_FOLDERS = ('core', 'ros', 'tools', 'bench')


def tree_entries(block):
    """
    Return the paths of an indented tree block, each with whether its line also describes it.

    The block has two spaces per level, and its folders end in /.
    """
    stack, entries = [], []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(' '))
        name = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (stack[-1][1] if stack else '') + name
        entries.append((path, len(line.split()) > 1))
        if name.endswith('/'):
            stack.append((indent, path))
    return entries


def section_block(text, heading):
    """Return the first code block after a heading."""
    return code_blocks(text[text.index(heading):])[0][1]


def test_layout_page_lists_every_module_and_only_what_exists():
    entries = tree_entries(code_blocks(read(LAYOUT_PAGE))[0][1])
    listed = {path for path, _ in entries}
    for path, described in entries:
        assert os.path.exists(os.path.join(REPO, path)), f'{LAYOUT_PAGE} lists {path}: no file'
        assert described, f'{LAYOUT_PAGE}: {path} has no description'
    assert len(listed) == len(entries), 'a path is listed twice'
    missing = []
    for module in package_modules():
        folder, name = os.path.split(module)
        if module not in listed and not (name == '__init__.py' and folder + '/' in listed):
            missing.append(module)
    for folder in ('launch', 'config'):
        missing += [f'{folder}/{n}' for n in sorted(os.listdir(os.path.join(REPO, folder)))
                    if f'{folder}/{n}' not in listed and n != '__pycache__']
    assert missing == [], f'not in {LAYOUT_PAGE}: {missing}'


def test_readme_layout_names_every_subpackage_and_only_what_exists():
    entries = tree_entries(section_block(read('README.md'), '## Layout'))
    for path, _ in entries:
        assert os.path.exists(os.path.join(REPO, path)), f'README lists {path}: no such path'
    subpackages = {f'{PACKAGE}/{n}/' for n in os.listdir(os.path.join(REPO, PACKAGE))
                   if os.path.isfile(os.path.join(REPO, PACKAGE, n, '__init__.py'))}
    assert subpackages <= {path for path, _ in entries}


def default_cell(spec):
    """Format a parameter's default (and range) as the tables in docs/parameters.md write it."""
    from rclpy.parameter import Parameter
    value = spec.default
    if isinstance(value, bool):
        text = 'true' if value else 'false'
    elif isinstance(value, list):
        text = '[' + ', '.join(str(v) for v in value) + ']'
    else:
        text = "''" if value == '' else str(value)
    cell = f'`{text}`'
    if spec.range is not None:
        low, high = spec.range
        integer = spec.type == Parameter.Type.INTEGER
        cell += f' ({int(low)}..{int(high)})' if integer else f' ({low:g}..{high:g})'
    return cell


def table_rows(text, heading):
    """{name: (default cell, runtime cell)} of the table under a `## ` heading."""
    section = text.split(f'\n## {heading}\n')[1].split('\n## ')[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 4 and cells[0].startswith('`'):
            rows[cells[0].strip('`')] = (cells[1], cells[2])
    return rows


def expected_rows(specs, rename=lambda name: name):
    return {rename(s.name): (default_cell(s), '' if s.read_only else 'yes') for s in specs}


def test_parameter_tables_match_the_code():
    from hobot_npu_infer.ros import image_source
    from hobot_npu_infer.ros.infer_parameters import head_parameters, PARAMETERS
    text = read(PARAMETERS_PAGE)
    assert table_rows(text, 'infer_node and infer_lifecycle_node') == expected_rows(PARAMETERS)
    heads = expected_rows(head_parameters('NAME'), lambda n: n.replace('NAME', '<name>'))
    assert table_rows(text, 'Heads of a packed model') == heads
    assert table_rows(text, 'image_source') == expected_rows(image_source.PARAMETERS)


def node_parameters(name):
    """Return the parameter names a node executable declares; heads.<any>.<x> as a pattern."""
    from hobot_npu_infer.ros import image_source
    from hobot_npu_infer.ros.infer_parameters import head_parameters, PARAMETERS
    if name == 'image_source':
        return {p.name for p in image_source.PARAMETERS}, None
    suffixes = '|'.join(p.name.split('.', 2)[2] for p in head_parameters('x'))
    return {p.name for p in PARAMETERS}, re.compile(rf'heads\.\w+\.({suffixes})$')


def declared(node, parameter):
    names, pattern = node_parameters(node)
    return parameter in names or bool(pattern and pattern.match(parameter))


def shown_commands():
    """Every simple command of every shell block: (page, line, tokens)."""
    for page in markdown_files():
        for line in shell_lines(read(page)):
            for tokens in commands(line):
                yield page, line, tokens


def bare(token):
    """Strip an option or argument of the [ ] of an optional part."""
    return token.strip('[]')


def check_ros_arguments(node, args, where):
    ros = args[args.index('--ros-args') + 1:] if '--ros-args' in args else []
    for flag, value in zip(ros, ros[1:]):
        if bare(flag) == '-p':
            name = bare(value).split(':=')[0]
            assert declared(node, name), f'{where}: {node} has no parameter {name}'
        if flag == '--params-file' and value.startswith('config/'):
            assert os.path.isfile(os.path.join(REPO, value)), f'{where}: no {value}'


def check_options(module, args, where):
    """Every -o/--option before --ros-args is one the command's --help lists."""
    own = args[:args.index('--ros-args')] if '--ros-args' in args else args
    text = help_text(module)
    choices = re.search(r'\{([\w,-]+)\}', text.split('\n\n')[0])
    positional = [a for a in own if not a.startswith('-')]
    if choices and positional and positional[0] in choices.group(1).split(','):
        text += help_text(module, positional[0])  # a subcommand's own options
    for token in map(bare, own):
        option = token.split('=')[0]
        if re.match(r'^--?[a-zA-Z][\w-]*$', option):
            assert re.search(rf'(?<![\w-]){re.escape(option)}(?![\w-])', text), \
                f'{where}: {module} has no option {option}'


def test_every_command_shown_exists_and_takes_the_options_shown():
    scripts = console_scripts()
    runnable = {module: name for name, (module, _) in scripts.items()}
    module_names = {os.path.splitext(os.path.basename(m))[0] for m in package_modules()}
    checked = 0
    for page, line, tokens in shown_commands():
        where = f'{page}: {line.strip()}'
        found = invocation(tokens)
        if found is None:
            name = os.path.basename(tokens[0])
            assert name not in module_names - set(scripts), f'{where}: {name} is no command'
            continue
        name, args = found
        if name.startswith(PACKAGE):
            assert module_path(name), f'{where}: no module {name}'
            assert name in runnable, f'{where}: {name} is not a command (not in setup.py)'
            module, name = name, runnable[name]
        else:
            assert name in scripts, f'{where}: no console script {name}'
            module = scripts[name][0]
        if name in ROS_NODES:
            check_ros_arguments(name, args, where)
        else:
            check_options(module, args, where)
        checked += 1
    assert checked > 20  # the parsing found the commands at all


def test_every_python_dash_m_in_the_docs_names_a_command_module():
    runnable = {module for module, _ in console_scripts().values()}
    for page in markdown_files():
        for module in re.findall(r'python3? -m (hobot_npu_infer[\w.]*\w)', read(page)):
            assert module in runnable, f'{page}: python -m {module} is not a command'


def test_launch_files_and_arguments_shown_exist(monkeypatch):
    arguments = {}

    def launch_arguments(launch_file):
        if launch_file not in arguments:
            declared_here, _, actions = run_launch_file(monkeypatch, launch_file)
            names = set(declared_here)
            for action in actions:  # an included launch file takes the arguments it declares
                if type(action).__name__ == 'IncludeLaunchDescription':
                    names |= launch_arguments(action.args[0].args[0].args[0][-1])
            arguments[launch_file] = names
        return arguments[launch_file]

    shown = 0
    for page, line, tokens in shown_commands():
        if tokens[:3] == ['ros2', 'launch', PACKAGE]:
            launch_file = tokens[3]
            assert os.path.isfile(os.path.join(REPO, 'launch', launch_file)), \
                f'{page}: no launch/{launch_file}'
            for token in map(bare, tokens[4:]):
                if ':=' in token:
                    name = token.split(':=')[0]
                    assert name in launch_arguments(launch_file), \
                        f'{page}: {launch_file} has no argument {name}'
            shown += 1
    assert shown >= 4


def test_parameters_set_with_ros2_param_are_declared():
    for page, line, tokens in shown_commands():
        if tokens[:2] == ['ros2', 'param'] and tokens[2] in ('set', 'get') and \
                tokens[3].endswith('infer_node'):
            assert declared('infer_node', tokens[4]), f'{page}: no parameter {tokens[4]}'


def test_make_targets_shown_exist():
    targets = set(re.findall(r'^([\w-]+):', read('Makefile'), re.M))
    for page, line, tokens in shown_commands():
        if tokens[0] == 'make':
            for target in tokens[1:]:
                if '=' not in target:
                    assert target in targets, f'{page}: make {target}: no such target'


def slug(heading):
    """Return GitHub's anchor of a heading."""
    text = re.sub(r'[`*]', '', heading.strip().lower())
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(page):
    return {slug(h) for h in re.findall(r'^#+ (.+)$', read(page), re.M)}


@pytest.mark.parametrize('page', markdown_files())
def test_links_point_at_files_and_headings_that_exist(page):
    text = re.sub(r'^```.*?^```', '', read(page), flags=re.M | re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'^[a-z]+:', target):
            continue  # a web address
        path, _, anchor = target.partition('#')
        linked = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        assert os.path.exists(os.path.join(REPO, linked)), f'{page}: link to {target}'
        if anchor:
            assert anchor in anchors(linked), f'{page}: no heading #{anchor} in {linked}'


@pytest.mark.parametrize('page', markdown_files())
def test_files_named_in_the_docs_exist(page):
    for path in re.findall(r'`([\w.-]+(?:/[\w.*-]+)+/?)`', read(page)):
        first = path.split('/')[0]
        if first in REPO_FOLDERS:
            assert os.path.exists(os.path.join(REPO, path)), f'{page}: no {path}'
        elif first in PACKAGE_FOLDERS and '*' not in path:
            assert os.path.exists(os.path.join(REPO, PACKAGE, path)), f'{page}: no {path}'


def test_shell_lines_parse():
    """Every shell line is valid shell quoting, so the checks above see all of it."""
    for page in markdown_files():
        for line in shell_lines(read(page)):
            shlex.split(line, comments=True)
