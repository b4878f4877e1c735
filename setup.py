"""maa: works both as `pip install -e .` and as an ament_python ROS 2 package (colcon build)."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "maa_ros"


def _tree(top):
    """data_files entries for every file under top/ (the shipped generator, the demo bag)."""
    out = {}
    for f in glob(f"{top}/**/*", recursive=True):
        if os.path.isfile(f):
            out.setdefault(f"share/{PACKAGE}/{os.path.dirname(f)}", []).append(f)
    return sorted(out.items())

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
    ] + _tree("models") + _tree("bags"),
    install_requires=["numpy", "pyyaml", "torch", "safetensors", "diffusers", "tqdm", "cryptography"],
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
        # parts of the ROS package maa_core uses without importing it (maa_core/demos/graph_walk.py)
        "maa.commands": [
            "go2-graph-walk = maa_ros.go2_walk:run_graph_walk",
        ],
    },
)
