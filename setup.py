"""ament_python / pip packaging for nitedr_ros."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'nitedr_ros'

RUNTIME = ['numpy>=1.24', 'opencv-python-headless>=4.8', 'onnxruntime>=1.17', 'pyyaml>=6', 'tqdm>=4.60',
           'matplotlib>=3.7']
TRAIN = ['torch>=2.3', 'onnx>=1.16', 'onnxscript>=0.2', 'PyWavelets>=1.4']  # pywt: FMI_w (evaluation)
BAG = ['rosbags>=0.11']
DDS = ['cyclonedds==11.0.*']  # the raw-sample fast path uses its private _clayer API
FLEET = ['ray>=2.9']  # nitedr fleet derain on a Ray cluster (--address local needs no Ray)
CUDA_PYTHON = ['cuda-python>=12.0']  # device buffers; imports and probes safely without a GPU
TENSORRT = ['tensorrt>=10.0', *CUDA_PYTHON]
DEV = ['pytest>=7', 'ruff>=0.5']
TEST = ['pytest>=7']  # colcon test runs pytest (not unittest) because of this extra / tests_require
# What a virtual environment needs beside a sourced ROS 2 (rosdep installs them system-wide): the Python
# packages of launch / ros2cli, colcon to build the package, and pytest < 8, whose path-argument hooks
# launch_testing's plugin (Jazzy, Humble) still uses.
ROS = ['lark', 'catkin_pkg', 'psutil', 'colcon-common-extensions', 'pytest>=7,<8']

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={package_name: ['samples/*', 'data/splits/*.json', 'transports/dds/*.xml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/models', glob('models/*.onnx') + glob('models/*.pt')
         + glob('models/*.md') + glob('models/*.json')),
    ],
    python_requires='>=3.10',
    install_requires=['setuptools', 'numpy>=1.24', 'pyyaml>=6', 'tqdm>=4.60'],
    extras_require={
        'runtime': RUNTIME,
        'train': RUNTIME + TRAIN,
        'bag': RUNTIME + BAG,
        'dds': RUNTIME + BAG + DDS,
        'fleet': RUNTIME + BAG + FLEET,
        'tensorrt': TENSORRT,
        'dev': DEV,
        'all': RUNTIME + TRAIN + BAG + DDS + FLEET + DEV + CUDA_PYTHON,  # everything but TensorRT itself
        'test': TEST,
        'ros': ROS,
    },
    tests_require=TEST,
    zip_safe=False,
    maintainer='nitedr_ros maintainers',
    maintainer_email='maintainers@nitedr.invalid',
    description='Real-time night-rain removal for vehicle cameras (ROS 2, TensorRT, ONNX Runtime).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'nitedr = nitedr_ros.cli:main',
            'nitedr_node = nitedr_ros.transports.rclpy_node:main',
        ],
    },
)
