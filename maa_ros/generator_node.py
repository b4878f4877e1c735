"""Generator node: prompts in, actors out.

Subscribes  <prompt_topic>  std_msgs/Float32MultiArray  (reliable, volatile, depth 10)
Publishes   <actor_topic>   std_msgs/UInt8MultiArray    (reliable, transient-local, depth 1)
            /diagnostics    diagnostic_msgs/DiagnosticArray
Services    ~/generate_now  std_srvs/Trigger  regenerate from the last good prompt (next seed)
            ~/revert        std_srvs/Trigger  republish the previous actor
`mode` (generate | retrieve | auto, maa_core/serving/retrieval.py): where candidates come from; retrieve
and auto need the folder's retrieval index (`maa index`). Default generate, index or not: what a
launch does must not change because a file appeared in the folder, and auto's threshold is untuned.
With `signing_key` (a private key file of `maa keygen`) every actor is signed (maa_core/signing.py)
and the signature rides in the message's layout (maa_ros/messages.py).
Generation runs in a worker thread; results come back to the executor through a guard condition
(with a 50 ms polling timer as a backstop).
"""
from __future__ import annotations

import queue
import time

import numpy as np
from std_msgs.msg import Float32MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger

from maa_core import prompts
from maa_core.errors import MaaError
from maa_core.resources import resolve
from maa_core.serving.engine import ActorHistory, Engine, Generated, Worker
from maa_core.serving.retrieval import MODES, load_index
from maa_core.serving.scorers import make_scorer
from maa_core.trajectory import Trajectory

from . import qos
from .messages import actor_to_msg, prompt_from_msg
from .node_util import MaaNode, run


class GeneratorNode(MaaNode):
    executable = "maa_generator"

    def __init__(self):
        super().__init__()
        self.history = ActorHistory(self.param("history_size"))
        self.engine = self.worker = self.signer = None
        self.last_prompt = None  # (prompt_id, Trajectory) of the last accepted prompt
        self._results: queue.Queue = queue.Queue()
        self._gc = self.create_guard_condition(self._drain_results)
        # backstop: a guard-condition trigger from another thread can be missed by some RMWs' wait
        # sets; a slow timer bounds the delay of a result waiting in the queue
        self.create_timer(0.05, self._drain_results)
        self.actor_pub = self.create_publisher(UInt8MultiArray, self.param("actor_topic"), qos.ACTOR)
        self.create_service(Trigger, "~/generate_now", self._on_generate_now)
        self.create_service(Trigger, "~/revert", self._on_revert)
        self._load()
        # subscribed once loaded: a publisher that waits for a subscriber (bag player) waits for a ready
        # generator; without a generator, prompts are still taken and answered with an error status
        self.create_subscription(Float32MultiArray, self.param("prompt_topic"), self._on_prompt, qos.PROMPT)

    def _load(self) -> None:
        folder = self.param("generator_dir")
        if not folder:
            self.health.error("no generator loaded: set the generator_dir parameter")
            return
        if self.param("signing_key"):  # asked to sign: fail closed, never publish unsigned instead
            from maa_core.signing import Signer
            try:
                self.signer = Signer.from_file(self.param("signing_key"))
            except MaaError as e:
                self.health.error(f"signing_key: {e}; no actors are published")
                return
        folder = str(resolve(folder, "models"))  # a path, or a generator the package ships (models/<name>)
        if self.param("torch_threads") > 0:
            import torch
            torch.set_num_threads(self.param("torch_threads"))
        try:
            from maa_core.go2.contract import read_generator_contract
            from maa_core.pipeline import PolicyGenerator
            gen = PolicyGenerator.from_pretrained(folder, device=self.param("device") or None)
            contract = read_generator_contract(folder)  # goes into every actor's header
        except MaaError as e:
            self.health.error(f"generator_dir: {e}")
            return
        mode, index = self.param("mode"), None
        if mode not in MODES:
            self.health.error(f"mode {mode!r}: expected one of {', '.join(MODES)}; no actors are published")
            return
        if mode != "generate":  # fail closed: never generate where retrieval was asked for
            try:
                index = load_index(folder, gen)
            except MaaError as e:
                self.health.error(f"mode {mode}: {e}; no actors are published")
                return
        scorer = None
        if self.param("sim_screen") and self.param("screen"):
            try:
                scorer = make_scorer(self.param("sim_screen"), self.param("sim_screen_steps"), gen.spec,
                                     self.param("wtw_run_dir"))
            except MaaError as e:
                self.health.error(f"{e}; screening without simulator")
        self.engine = Engine(gen, self.param("num_candidates"), self.param("seed"), self.param("screen"),
                             self.param("max_abs_action"), scorer=scorer, name=self.get_name(),
                             blob_extra={"contract": contract.to_dict()} if contract is not None else None,
                             signer=self.signer, mode=mode, retrieval=index,
                             retrieval_threshold=self.param("retrieval_threshold"))
        try:
            self._warm_up(gen)
        except MaaError as e:
            self.health.error(f"warm-up generation failed: {e}")
        self.worker = Worker(self.engine, self._on_result, self.param("max_pending"))
        sim = f"; screening with {self.param('sim_screen_steps')}-step rollouts in {self.param('sim_screen')}" \
            if scorer is not None else ""
        if index is not None:
            t = self.engine.retrieval_threshold if self.engine.retrieval_threshold >= 0 else index.threshold
            sim += f"; mode {mode} over {len(index)} training checkpoints" + (f" (threshold {t:.4g})" if mode == "auto" else "")
        self.health.ok(f"ready: {gen.spec.name} generator, prompts of >= {gen.prompt_length} steps "
                       f"x ({gen.obs_dim} state + {gen.act_dim} action) dims{sim}",
                       spec=gen.spec.name, prompt_length=gen.prompt_length, obs_dim=gen.obs_dim, act_dim=gen.act_dim,
                       policy_contract="yes" if contract is not None else "none", mode=mode,
                       signing_key_id=self.signer.key_id if self.signer is not None else "none")

    def _warm_up(self, gen) -> None:
        """One throw-away generation, so the first real prompt does not pay for lazy initialisation."""
        T = gen.prompt_length
        gen.generate([Trajectory(np.zeros((T, gen.obs_dim)), np.zeros((T, gen.act_dim)), np.arange(T) >= T // 2)],
                     num_policies=self.param("num_candidates"), seed=0)

    # -- prompts -----------------------------------------------------------------------------
    def _on_prompt(self, msg: Float32MultiArray) -> None:
        received = time.monotonic()
        self.health.count("prompts_received")
        try:
            traj = prompt_from_msg(msg, max_values=self.param("max_prompt_values"))
            pid = prompts.prompt_id(traj)
            if self.engine is None:
                raise MaaError(f"prompt {pid}: no generator loaded")
            self.engine.check_prompt(traj, where=f"prompt {pid}")
        except MaaError as e:
            self.health.count("prompts_rejected")
            self.health.error(str(e))
            return
        self._submit(pid, traj, received)

    def _submit(self, pid, traj, received) -> None:
        self.last_prompt = (pid, traj)
        dropped = self.worker.submit(pid, traj, received)
        if dropped:
            self.health.count("prompts_dropped")
            self.health.warn(f"prompt {dropped} dropped: {self.param('max_pending')} prompts were waiting "
                             f"for generation when {pid} arrived")

    def _on_result(self, result) -> None:  # worker thread
        self._results.put(result)
        try:
            self._gc.trigger()
        except Exception:  # the context is shut down (a generation finishing during shutdown): dropped
            pass

    def _drain_results(self) -> None:  # executor thread
        while True:
            try:
                r = self._results.get_nowait()
            except queue.Empty:
                return
            if isinstance(r, Generated):
                self.actor_pub.publish(actor_to_msg(r.data, r.signature))
                self.history.push(r.blob.generation_id, r.data)
                self.health.count("actors_published")
                self.health.ok(f"published actor {r.blob.generation_id} for prompt {r.prompt_id}",
                               generation_id=r.blob.generation_id, prompt_id=r.prompt_id,
                               checksum=r.blob.checksum, candidate=r.blob.extra.get("candidate"),
                               source=r.blob.extra.get("source", ""), nearest_key=r.blob.extra.get("nearest_key", ""),
                               nearest_distance=r.blob.extra.get("nearest_distance", ""),
                               valid_candidates=r.blob.extra.get("valid", ""),
                               generate_ms=round(1e3 * r.seconds, 1),
                               prompt_to_actor_ms=round(1e3 * (time.monotonic() - r.received_at), 1),
                               actor_bytes=len(r.data), signed="yes" if r.signature else "no")
            else:
                self.health.count("generation_failures")
                self.health.error(str(r))

    # -- services ----------------------------------------------------------------------------
    def _on_generate_now(self, req, resp):
        if self.engine is None or self.last_prompt is None:
            resp.success, resp.message = False, "no generator loaded" if self.engine is None else "no prompt received yet"
        else:
            pid, traj = self.last_prompt
            self._submit(pid, traj, time.monotonic())
            resp.success, resp.message = True, f"generating from prompt {pid}"
        return resp

    def _on_revert(self, req, resp):
        try:
            gid, data = self.history.revert()
        except MaaError as e:
            resp.success, resp.message = False, str(e)
            self.health.warn(str(e))
            return resp
        # Ed25519 is deterministic: signing again gives the signature the actor was first published with
        self.actor_pub.publish(actor_to_msg(data, self.signer.sign(data).to_text() if self.signer else ""))
        self.health.count("reverts")
        self.health.ok(f"reverted to actor {gid}", generation_id=gid)
        resp.success, resp.message = True, f"reverted to {gid}"
        return resp

    def close(self) -> None:
        # a generation in flight cannot be interrupted and its actor could no longer be published:
        # wait briefly (node_util.run then ends the process without interpreter teardown)
        if self.worker is not None:
            self.worker.stop(timeout=2.0)


def main(args=None) -> int:
    return run(GeneratorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
