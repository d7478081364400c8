#!/usr/bin/env python3
"""
Build the D-Robotics message packages hbm_img_msgs and ai_msgs for rclpy, without colcon.

Why: these packages exist only on D-Robotics (TROS) boards, but tests need real rclpy
publishers/subscriptions of hbm_img_msgs/HbmMsg*P and ai_msgs/PerceptionTargets over DDS.
The venv (ROS 2 Jazzy pip wheels) has the rosidl generators (Python) and the runtime
libraries/headers, but no ament_cmake / rosidl_default_generators, so this script does
what rosidl_generate_interfaces() would: msg -> idl -> type hashes -> C, typesupport
(c, fastrtps_c, introspection_c) and Python code, then compiles it with gcc/g++.

Usage (with the venv's python, which it uses to find the venv via sys.prefix):
    .venv/bin/python test/tros_msgs/build_tros_msgs.py OUTPUT_PREFIX

It is idempotent: OUTPUT_PREFIX/.tros_msgs_stamp holds a hash of the .msg files and of
this script; a second run with the same inputs does nothing.

Result (an install-like prefix):
    OUTPUT_PREFIX/lib/lib<pkg>__rosidl_{generator_c,typesupport_c,typesupport_fastrtps_c,
                  typesupport_introspection_c,generator_py}.so
    OUTPUT_PREFIX/python/<pkg>/...            (the importable Python packages)
    OUTPUT_PREFIX/share/ament_index/resource_index/packages/<pkg>, share/<pkg>/msg/*.msg|idl|json

Environment a process needs to use it:
    PYTHONPATH=OUTPUT_PREFIX/python                 (or sys.path.insert(0, ...) before import)
    LD_LIBRARY_PATH=OUTPUT_PREFIX/lib               (recommended; the libraries carry an rpath
        to OUTPUT_PREFIX/lib and the venv's lib, and the Python extension links the
        fastrtps_c/introspection_c typesupports, so the typesupport dispatch finds them
        already loaded even without it)
    AMENT_PREFIX_PATH=OUTPUT_PREFIX:<venv>          (optional: only for ament index lookups,
        e.g. `ros2 interface`-like tools or get_package_share_directory)
    plus, as always for ROS here: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=<n>.
"""
from concurrent.futures import ThreadPoolExecutor
import contextlib
import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

HERE = pathlib.Path(__file__).resolve().parent
VENV = pathlib.Path(sys.prefix)
VENV_LIB = VENV / 'lib'
VENV_INC = VENV / 'include'
# package -> interface packages it depends on (from the .msg files)
PACKAGES = {
    'hbm_img_msgs': ['builtin_interfaces'],
    'ai_msgs': ['std_msgs', 'sensor_msgs', 'geometry_msgs', 'builtin_interfaces'],
}
RUNTIME_INCLUDES = ['rosidl_runtime_c', 'rosidl_typesupport_interface', 'rcutils',
                    'rosidl_typesupport_c', 'rosidl_typesupport_fastrtps_c',
                    'rosidl_typesupport_fastrtps_cpp', 'rosidl_typesupport_introspection_c',
                    'rosidl_dynamic_typesupport', 'rcpputils', 'rmw']
CFLAGS = ['-O1', '-fPIC', '-shared', '-w']


class BuildError(Exception):
    pass


def step(message):
    print(f'build_tros_msgs: {message}', flush=True)


def inputs_hash():
    digest = hashlib.sha256(pathlib.Path(__file__).read_bytes())
    runtime = VENV_LIB / 'librosidl_runtime_c.so'  # a different venv / ROS build: rebuild
    runtime_size = runtime.stat().st_size if runtime.exists() else 0
    digest.update(f'{VENV}:{sys.version}:{runtime_size}'.encode())
    for pkg in PACKAGES:
        for msg in sorted((HERE / pkg / 'msg').glob('*.msg')):
            digest.update(f'{pkg}/{msg.name}\n'.encode() + msg.read_bytes())
    return digest.hexdigest()


def generate(pkg, deps, gen):
    """Run the rosidl generators (as rosidl_generate_interfaces would) into gen/<kind>/..."""
    # Imported here: they need AMENT_PREFIX_PATH (set in main) to find their templates.
    # The rosidl_cli entry points are registered twice in this venv (egg-info and dist-info),
    # so the `rosidl generate` front end refuses to run: call the extensions directly.
    from rosidl_adapter.msg import convert_msg_to_idl
    from rosidl_generator_c.cli import GenerateC
    from rosidl_generator_py.cli import GeneratePython
    from rosidl_generator_type_description.cli import HashTypeDescription
    from rosidl_typesupport_c.cli import GenerateCTypesupport
    from rosidl_typesupport_fastrtps_c.cli import GenerateFastRTPSCTypesupport
    from rosidl_typesupport_introspection_c.cli import GenerateIntrospectionCTypesupport

    src = gen / 'src' / pkg
    shutil.copytree(HERE / pkg / 'msg', src / 'msg')
    for msg in sorted((src / 'msg').glob('*.msg')):
        convert_msg_to_idl(src, pkg, pathlib.Path('msg') / msg.name, src / 'msg')
    idl = [f'{src}:msg/{p.name}' for p in sorted((src / 'msg').glob('*.idl'))]
    include_paths = [str(VENV / 'share' / d) for d in deps]
    descriptions = HashTypeDescription('type_description').generate_type_hashes(
        pkg, idl, include_paths, output_path=gen / 'type_description' / pkg)
    # C code goes to gen/<kind>/<pkg>/<pkg>/msg: it includes "<pkg>/msg/...", -I gen/<kind>/<pkg>
    GenerateC('c').generate(pkg, idl, include_paths, gen / 'c' / pkg / pkg,
                            type_description_files=descriptions)
    for kind, extension in [('typesupport_c', GenerateCTypesupport),
                            ('typesupport_fastrtps_c', GenerateFastRTPSCTypesupport),
                            ('typesupport_introspection_c', GenerateIntrospectionCTypesupport)]:
        extension(kind).generate(pkg, idl, include_paths, gen / kind / pkg / pkg)
    GeneratePython('py', typesupport_implementations=['rosidl_typesupport_c']).generate(
        pkg, idl, include_paths, gen / 'py' / pkg)


def run(cmd):
    result = subprocess.run(['nice', '-n', '19'] + cmd, capture_output=True, text=True)
    if result.returncode != 0:
        error = next((line for line in result.stderr.splitlines() if 'error' in line),
                     result.stderr.strip().splitlines()[-1] if result.stderr.strip() else '?')
        raise BuildError(f'{cmd[0]} {cmd[-1]} failed: {error}')


def link(pkg, gen, lib, name, compiler, sources, libs, extra_inc=()):
    """Compile sources into one shared library; returns its path."""
    includes = (list(extra_inc) + [VENV_INC / d for d in RUNTIME_INCLUDES + PACKAGES[pkg]]
                + [VENV_INC])
    flags = CFLAGS + (['-std=c++17'] if compiler == 'g++' else ['-std=c11'])
    target = lib / name if name.startswith('lib') else gen / 'py' / pkg / name
    cmd = [compiler, *flags, f'-Wl,-soname,{name}',
           f'-DROSIDL_GENERATOR_C_BUILDING_DLL_{pkg}',
           f'-DROSIDL_TYPESUPPORT_FASTRTPS_C_BUILDING_DLL_{pkg}',
           f'-DROSIDL_TYPESUPPORT_INTROSPECTION_C_BUILDING_DLL_{pkg}',
           *[f'-I{i}' for i in includes], *map(str, sources),
           f'-L{lib}', f'-L{VENV_LIB}', f'-Wl,-rpath,{lib}:{VENV_LIB}', '-Wl,--no-as-needed',
           *[f'-l{library}' for library in libs], '-o', str(target)]
    run(cmd)
    return target


def compile_package(pkg, gen, lib):
    deps = PACKAGES[pkg]

    def msgdir(kind):
        return gen / kind / pkg / pkg / 'msg'

    def dep_libs(suffix):
        return [f'{d}__{suffix}' for d in deps]

    inc_all = [gen / kind / pkg for kind in
               ('c', 'typesupport_fastrtps_c', 'typesupport_introspection_c')]
    gen_c = f'{pkg}__rosidl_generator_c'
    link(pkg, gen, lib, f'lib{gen_c}.so', 'gcc', sorted((msgdir('c') / 'detail').glob('*.c')),
         dep_libs('rosidl_generator_c') + ['rosidl_runtime_c', 'rcutils'], inc_all)
    step(f'{pkg}: compiled lib{gen_c}.so')

    jobs = {
        'typesupport_fastrtps_c': (
            'g++', sorted((msgdir('typesupport_fastrtps_c') / 'detail').glob('*.cpp')),
            dep_libs('rosidl_typesupport_fastrtps_c') + dep_libs('rosidl_generator_c')
            + [gen_c, 'rosidl_typesupport_fastrtps_c', 'rosidl_typesupport_fastrtps_cpp',
               'fastcdr', 'rosidl_runtime_c', 'rcutils']),
        'typesupport_introspection_c': (
            'gcc', sorted((msgdir('typesupport_introspection_c') / 'detail').glob('*.c')),
            dep_libs('rosidl_typesupport_introspection_c')
            + [gen_c, 'rosidl_typesupport_introspection_c', 'rosidl_runtime_c']),
        'typesupport_c': (
            'g++', sorted(msgdir('typesupport_c').glob('*.cpp')),
            dep_libs('rosidl_typesupport_c')
            + [gen_c, 'rosidl_typesupport_c', 'rosidl_runtime_c', 'rcutils']),
    }
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(link, pkg, gen, lib, f'lib{pkg}__rosidl_{kind}.so', compiler,
                               sources, libs, inc_all)
                   for kind, (compiler, sources, libs) in jobs.items()]
        for future in futures:
            future.result()
    step(f'{pkg}: compiled typesupport libraries (c, fastrtps_c, introspection_c)')

    import numpy
    py_inc = [sysconfig.get_paths()['include'], numpy.get_include()]
    typesupports = [f'{pkg}__rosidl_typesupport_{k}'
                    for k in ('c', 'fastrtps_c', 'introspection_c')]
    link(pkg, gen, lib, f'lib{pkg}__rosidl_generator_py.so', 'gcc',
         sorted((gen / 'py' / pkg / 'msg').glob('*_s.c')),
         dep_libs('rosidl_generator_py') + dep_libs('rosidl_generator_c')
         + [gen_c, f'{pkg}__rosidl_typesupport_c', 'rosidl_runtime_c', 'rcutils'],
         inc_all + py_inc)
    # The extension also links the fastrtps_c / introspection_c typesupports so that the
    # rosidl_typesupport_c dispatch (dlopen by file name) finds them already loaded.
    module = f'{pkg}_s__rosidl_typesupport_c' + sysconfig.get_config_var('EXT_SUFFIX')
    link(pkg, gen, lib, module, 'gcc', [gen / 'py' / pkg / f'_{pkg}_s.ep.rosidl_typesupport_c.c'],
         [f'{pkg}__rosidl_generator_py', gen_c] + typesupports + ['rosidl_runtime_c'],
         inc_all + py_inc)
    step(f'{pkg}: compiled the Python extension {module}')


def install(pkg, gen, prefix):
    """Lay out the Python package, share/<pkg> and the ament index entries."""
    py = prefix / 'python' / pkg
    py.mkdir(parents=True)
    (py / '__init__.py').write_text('')
    shutil.copytree(gen / 'py' / pkg / 'msg', py / 'msg', ignore=shutil.ignore_patterns('*.c'))
    for module in (gen / 'py' / pkg).glob(f'{pkg}_s__*.so'):
        shutil.copy2(module, py)
    share = prefix / 'share' / pkg / 'msg'
    share.mkdir(parents=True)
    for f in [*(gen / 'src' / pkg / 'msg').iterdir(),
              *(gen / 'type_description' / pkg / 'msg').iterdir()]:
        shutil.copy2(f, share)
    index = prefix / 'share' / 'ament_index' / 'resource_index'
    for kind, content in [('packages', ''), ('rosidl_interfaces',
                          '\n'.join(f'msg/{p.name}' for p in sorted(share.glob('*.idl'))))]:
        (index / kind).mkdir(parents=True, exist_ok=True)
        (index / kind / pkg).write_text(content)


def main(argv):
    if len(argv) != 2:
        raise BuildError('usage: build_tros_msgs.py OUTPUT_PREFIX')
    prefix = pathlib.Path(argv[1]).resolve()
    stamp = prefix / '.tros_msgs_stamp'
    digest = inputs_hash()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        step(f'up to date in {prefix}')
        return
    for tool in ('gcc', 'g++'):
        if shutil.which(tool) is None:
            raise BuildError(f'{tool} not found')
    marker = prefix / '.tros_msgs_prefix'
    if prefix.is_dir() and any(prefix.iterdir()) and not (marker.exists() or stamp.exists()):
        raise BuildError(f'refusing to write into non-empty {prefix}: not made by this script')
    prefix.mkdir(parents=True, exist_ok=True)
    marker.write_text('made by test/tros_msgs/build_tros_msgs.py; rebuilt in place\n')
    os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join(
        p for p in [str(VENV), os.environ.get('AMENT_PREFIX_PATH', '')] if p)
    for sub in ('python', 'lib', 'share', 'build', '.tros_msgs_stamp'):
        path = prefix / sub
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    lib = prefix / 'lib'
    lib.mkdir(parents=True)
    for pkg, deps in PACKAGES.items():
        gen = prefix / 'build' / pkg
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # generators chat per file
                generate(pkg, deps, gen)
        except Exception as error:  # the generators raise all kinds of exceptions
            raise BuildError(f'{pkg}: code generation failed: {type(error).__name__}: {error}')
        step(f'{pkg}: generated code in {gen}')
        compile_package(pkg, gen, lib)
        install(pkg, gen, prefix)
        step(f'{pkg}: installed into {prefix}')
    shutil.rmtree(prefix / 'build')
    stamp.write_text(digest + '\n')
    step(f'done: PYTHONPATH={prefix / "python"} LD_LIBRARY_PATH={lib}')


if __name__ == '__main__':
    try:
        main(sys.argv)
    except (BuildError, OSError) as error:
        print(f'build_tros_msgs: error: {error}', file=sys.stderr)
        sys.exit(1)
