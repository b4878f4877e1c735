"""Serving (no ROS): a behavior prompt in, the chosen actor blob out.

    engine.py     Engine (K candidates from a PolicyGenerator -> screening -> ActorBlob), Worker
                  (one generation thread, bounded queue), ActorHistory (revert)
    screening.py  validity + ranking of candidates; the `Scorer` interface it ranks with
    retrieval.py  nearest training checkpoint in the generator's embedding: the index in a generator
                  folder (`maa index`) and the serving modes retrieve / auto
    scorers.py    scorers by name (`sim_screen`): each domain implements its own (maa_core.go2.scoring,
                  maa_core.envs.scoring)
    untrained.py  a random-weight generator for wiring tests and benchmarks

The generator node (maa_ros/generator_node.py) wraps these in ROS topics and services.
"""
