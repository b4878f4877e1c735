"""maa: works both as `pip install -e .` and as an ament_python ROS 2 package (colcon build)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "maa_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Make-An-Agent: generate control policies from one recorded behavior, deploy on a Unitree Go2",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["maa_core", "maa_core.*", "maa_ros", "maa_ros.*"]),
    # what ament/colcon installs beside the Python package
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["numpy", "pyyaml", "torch", "safetensors", "diffusers", "tqdm"],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "maa = maa_core.cli:main",
            # maa_ros (ROS executables: `ros2 run maa_ros <name>`; modules listed in maa_ros/launch_spec.py)
            "maa-ros = maa_ros.launcher:main",
            "maa_generator = maa_ros.generator_node:main",
            "maa_bag_player = maa_ros.bag_player_node:main",
            "maa_prompt_recorder = maa_ros.prompt_recorder_node:main",
            "maa_go2_controller = maa_ros.go2_controller_node:main",
        ],
    },
)
