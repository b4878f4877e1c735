"""maa_core: behavior-prompted policy-parameter generation (Make-An-Agent). Never imports ROS."""
__version__ = "0.1.0"
