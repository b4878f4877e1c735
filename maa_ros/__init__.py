"""maa_ros: the ROS 2 side of maa, rclpy code only: nodes (generator, prompt recorder, bag player,
Go2 controller), message conversion, QoS, the launch spec and launcher, a graph client, and the
Go2 walk through the ROS graph. Everything ROS-free they run is in maa_core (the generation engine
and screening in maa_core.serving, the Go2 core in maa_core.go2, the demos in maa_core.demos).
"""
