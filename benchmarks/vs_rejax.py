"""rejax's DQN (the pure-JAX DQN on PyPI), configured as close to `Config()` as it allows,
timed the way `benchmarks/fps.py` times ours (ahead-of-time compile, then run).

    python benchmarks/vs_rejax.py --num-frames 40000

Settings rejax cannot match (rejax 0.1.3):
- hidden layers are fixed at 64-64 in `DQN.create_agent` (ours: 128-128);
- one learning step every 4 frames needs `num_envs=4` (4 environments stepped side by
  side, one update per iteration), where ours steps 1 environment 4 times;
- loss is the L2 loss (ours: Huber) and gradient clipping is element-wise `optax.clip`
  (ours: global-norm clipping);
- a time-limit truncation is a terminal state for it (ours bootstraps);
- its evaluation runs 128 episodes; we turn it off here (as for ours in compare.py).
rejax 0.1.3 also expects gymnax's pre-1.0 `step` (5 values); `OldStepAPI` below adapts.
"""

import argparse
import json
import time

import gymnax
import jax
import jax.numpy as jnp

from purejaxdqn import Config


class OldStepAPI:
    """A gymnax >= 1.0 environment seen through the pre-1.0 step API rejax expects."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet, e.g. while copy.deepcopy rebuilds the object
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(
            key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info

    def reset(self, key, params):
        return self.env.reset(key, params)


def make_rejax_train(config: Config):
    from rejax import DQN

    env, env_params = gymnax.make(config.env_name)
    num_envs = config.train_every
    algo = DQN.create(
        env=OldStepAPI(env), env_params=env_params, total_timesteps=config.num_frames,
        eval_freq=config.num_frames, skip_initial_evaluation=True, num_envs=num_envs,
        fill_buffer=config.warmup_steps, batch_size=config.batch_size,
        buffer_size=config.buffer_size, learning_rate=config.learning_rate,
        gamma=config.gamma, polyak=1.0 - config.tau, target_update_freq=num_envs,
        eps_start=config.eps_start, eps_end=config.eps_end,
        exploration_fraction=config.eps_decay_frames / config.num_frames,
        max_grad_norm=config.max_grad_norm, ddqn=False,
        agent_kwargs={"activation": "relu"})
    return algo.train


def run(config: Config, num_seeds: int = 1, seed: int = 0) -> dict:
    train = jax.jit(jax.vmap(make_rejax_train(config)))
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compiled_at = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - compiled_at
    return {"frames_per_second": num_seeds * config.num_frames / run_s, "run_s": run_s,
            "compile_s": compiled_at - start}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--num-seeds", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(Config(num_frames=args.num_frames, eval_every=0), args.num_seeds)))


if __name__ == "__main__":
    main()
