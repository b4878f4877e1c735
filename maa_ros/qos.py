"""QoS profiles, chosen on purpose (they use only APIs that Humble and Jazzy share)."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# The current actor: reliable, and kept for late joiners (a controller started after the
# generator still receives the actor in force). Depth 1: only the current actor matters.
ACTOR = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                   reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# A subscriber that wants every actor published, not just the current one (tests, loggers): the same
# contract, with a deeper reader queue, so two actors published in quick succession both get taken
# (the writer still keeps only the newest: an actor still in flight when the next is published can be replaced).
ACTOR_EVERY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=16,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Prompts: every prompt is a request, so reliable; volatile, so a restarted generator does not
# re-run an old request by itself.
PROMPT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# State streams (controller steps, joint states, executed commands): loss of a sample is harmless.
STATE = qos_profile_sensor_data
# Small latched status values (e.g. the active generation id): late joiners get the latest.
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# diagnostic_msgs on /diagnostics: reliable, and the last 10 statuses kept for late joiners, so a monitor
# that matches a node just after it started (discovery takes tens of ms) still sees its first events.
# A volatile subscriber (diagnostic_aggregator, `ros2 topic echo`) is compatible with this writer.
DIAGNOSTICS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
