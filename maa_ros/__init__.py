"""maa_ros: ROS 2 nodes over maa_core (generator, prompt recorder, bag player, Go2 controller).

Modules without `_node` in their name and `launch_spec`, `generation`, `screening` import no ROS;
the nodes import rclpy and standard message packages only.
"""
