"""ros2 launch maa_ros go2_generate.launch.py [backend:=sim|unitree] [network_interface:=eth0]
    [generator_dir:=...] [wtw_run_dir:=...] [prompt_bag:=...] [config:=...] [controller:=true] [recorder:=true]
    [signing_key:=<generator's private key>] [trusted_keys:=<a.pub,b.pub>] [require_signature:=auto|true|false]
    [mode:=generate|retrieve|auto]

The nodes and their parameters come from maa_ros.launch_spec (plain Python); `maa-ros launch
go2_generate ...` starts the same nodes as processes where `ros2 launch` is not installed.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from maa_ros import launch_spec

GRAPH = "go2_generate"


def node_actions(context, *args, **kwargs):
    arguments, _ = launch_spec.GRAPHS[GRAPH]
    given = {a.name: LaunchConfiguration(a.name).perform(context) for a in arguments}
    return [
        Node(package=launch_spec.PACKAGE, executable=n.executable, name=n.name,
             parameters=[n.params_file, n.parameters] if n.parameters else [n.params_file],
             output="screen", on_exit=Shutdown() if n.required else None)
        for n in launch_spec.build(GRAPH, given)
    ]


def generate_launch_description():
    arguments, _ = launch_spec.GRAPHS[GRAPH]
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.help, choices=list(a.choices) or None)
         for a in arguments]
        + [OpaqueFunction(function=node_actions)])
