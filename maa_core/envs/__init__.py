"""Simulation environments with the paper's protocol (MetaWorld v3, Robosuite 1.5) and evaluation.

    make_env(task, robot=None, seed=0)      MetaWorld task (39/4) or Robosuite task (41/8)
    training_config(task, seed)             the fixed configuration of a training run
    random_configs(task, n=5, seed=0)       seeded evaluation configurations
    evaluate_actor(actor, task, n_configs=5, episodes_per_config=1, seed=0) -> EvalResult
    rollout(env, policy, config) -> Rollout(trajectory, ret, first_success)
Heavy simulator imports happen on first use.
"""
from .evaluate import EvalResult, NumpyPolicy, Rollout, evaluate_actor, evaluate_policy, rollout
from .metaworld_env import MetaWorldEnv, get_env, random_configs, training_config
from .tasks import (PAPER_TASKS, ROBOSUITE_EVAL_ROBOT, ROBOSUITE_TASKS, ROBOSUITE_TRAIN_ROBOT, SEEN_TASKS,
                    UNSEEN_TASKS, metaworld_id, robosuite_env_name, short_name)


def make_env(task: str, robot: str | None = None, seed: int = 0, max_episode_steps: int = 500):
    """MetaWorld env for MetaWorld tasks; Robosuite env (default robot Panda) for 'door', 'lift', 'nut-assembly'."""
    if task in ROBOSUITE_TASKS or task in ROBOSUITE_TASKS.values():
        from .robosuite_env import RobosuiteEnv

        return RobosuiteEnv(task, robot=robot or ROBOSUITE_TRAIN_ROBOT, seed=seed, max_episode_steps=max_episode_steps)
    return MetaWorldEnv(task, seed=seed, max_episode_steps=max_episode_steps)


__all__ = ["make_env", "MetaWorldEnv", "get_env", "random_configs", "training_config", "evaluate_actor",
           "evaluate_policy", "rollout", "Rollout", "EvalResult", "NumpyPolicy", "PAPER_TASKS", "SEEN_TASKS",
           "UNSEEN_TASKS", "ROBOSUITE_TASKS", "ROBOSUITE_TRAIN_ROBOT", "ROBOSUITE_EVAL_ROBOT", "metaworld_id",
           "short_name", "robosuite_env_name"]
