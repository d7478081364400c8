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
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='hobot_npu_infer developers',
    maintainer_email='dev@hobot-npu-infer.invalid',
    description='Neural-network inference on robot NPUs and CPUs for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'infer_node = hobot_npu_infer.ros.infer_node:main',
            'image_source = hobot_npu_infer.ros.image_source:main',
            'diag_monitor = hobot_npu_infer.ros.diag_monitor:main',
            'infer_lifecycle_node = hobot_npu_infer.ros.infer_lifecycle_node:main',
        ],
    },
)
