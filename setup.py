from glob import glob

from setuptools import find_packages, setup

package_name = 'hobot_npu_infer'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml') +
         glob('config/*.txt')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='hobot_npu_infer developers',
    maintainer_email='dev@hobot-npu-infer.invalid',
    description='Neural-network inference on robot NPUs and CPUs for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        # Every user command: `ros2 run hobot_npu_infer NAME` on a ROS install (setup.cfg puts
        # them in lib/hobot_npu_infer/), .venv/bin/NAME after `make venv`, and each is also
        # `python -m MODULE`. infer_node across processes is measured by `batch_bench --node`
        # (bench/node_bench.py has no command of its own).
        'console_scripts': [
            # ROS nodes
            'infer_node = hobot_npu_infer.ros.infer_node:main',
            'infer_lifecycle_node = hobot_npu_infer.ros.infer_lifecycle_node:main',
            'image_source = hobot_npu_infer.ros.image_source:main',
            # tools
            'detect = hobot_npu_infer.tools.detect:cli',
            'compare = hobot_npu_infer.tools.compare:cli',
            'model_info = hobot_npu_infer.tools.model_info:cli',
            'rknn_convert = hobot_npu_infer.tools.rknn_convert:cli',
            'demo = hobot_npu_infer.tools.demo:cli',
            'diag_monitor = hobot_npu_infer.tools.diag_monitor:main',
            'lifecycle_ctl = hobot_npu_infer.tools.lifecycle_ctl:main',
            # benchmarks
            'batch_bench = hobot_npu_infer.bench.batch_bench:cli',
            'head_bench = hobot_npu_infer.bench.head_bench:cli',
            'soak_bench = hobot_npu_infer.bench.soak_bench:cli',
            'peer_bench = hobot_npu_infer.bench.peer_bench:cli',
            'tracking_bench = hobot_npu_infer.bench.tracking_bench:cli',
        ],
    },
)
