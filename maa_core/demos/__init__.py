"""The demos `maa demo` runs (each reads its config through maa_core.resources, so it works from a
checkout and from an installed share/ folder):

    go2.py         the main job: a generated actor walks the simulated Go2 over ROS (config/demo_go2.yaml)
    go2_outputs.py what that walk leaves to look at: video (MuJoCo offscreen), path plot, tracking plot
    graph_walk.py  the ROS-free half of that walk; the rclpy half is maa_ros/go2_walk.py (entry point)
    metaworld.py   collect -> train -> generate -> evaluate on MetaWorld at a tiny scale (config/demo.yaml)
"""
