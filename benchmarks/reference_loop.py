"""The classic way to do the same job: a Python for-loop over gymnasium CartPole-v1 with a
`collections.deque` replay buffer and a jitted Haiku/RLax/Optax learning step, with the
same hyperparameters as `Config()`. It is the baseline users come from, and follows the
tutorial (`../shared/reference/tutorial_dqn.py`) where it differs from `Config()`: frames
counted from 1 for epsilon, batches drawn without replacement, a time limit terminal,
evaluation episodes seeded `seed + 1000 + i` in a separate environment; it uses our
network and learning step, which compute what the tutorial's do.

    python benchmarks/reference_loop.py --num-frames 40000
"""

import argparse
import collections
import json
import random
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn import Config
from purejaxdqn.dqn import learn_step
from purejaxdqn.learning import make_optimizer
from purejaxdqn.networks import make_q_network
from purejaxdqn.policies import epsilon_at
from purejaxdqn.replay import Transition


def run(config: Config, seed: int = 0, evaluate: bool = False) -> dict:
    """Train one seed; return frames per second and the final greedy return."""
    env = gym.make("CartPole-v1")
    network = make_q_network(config, env.action_space.n, env.observation_space.shape)
    hparams = config.hyperparams()
    rng = random.Random(seed)
    obs, _ = env.reset(seed=seed)
    online = network.init(jax.random.key(seed), jnp.asarray(obs))
    target = online
    opt_state = make_optimizer(hparams.learning_rate, hparams.max_grad_norm).init(online)
    q_values = jax.jit(network.apply)
    learn = jax.jit(lambda o, t, s, b, n: learn_step(o, t, s, b, n, hparams, network, config))
    replay = collections.deque(maxlen=config.buffer_size)
    # Compile both jitted functions before the clock starts, as for the others.
    dummy = Transition(np.zeros((config.batch_size, *obs.shape), np.float32),
                       np.zeros(config.batch_size, np.int32),
                       np.zeros(config.batch_size, np.float32),
                       np.zeros(config.batch_size, bool),
                       np.zeros((config.batch_size, *obs.shape), np.float32))
    jax.block_until_ready((q_values(online, obs), learn(online, target, opt_state, dummy, 1)))
    learn_steps = 0

    start = time.perf_counter()
    for frame in range(config.num_frames):
        # The tutorial counts frames from 1 (`epsilon_by_frame(frame_idx)`).
        epsilon = float(epsilon_at(frame + 1, config.eps_start, config.eps_end,
                                   config.eps_decay_frames))
        if rng.random() < epsilon:
            action = env.action_space.sample()
        else:
            action = int(jnp.argmax(q_values(online, obs)))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        terminal = terminated if config.bootstrap_on_truncation else terminated or truncated
        replay.append((obs, action, reward, terminal, next_obs))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        if frame + 1 >= config.warmup_steps and (frame + 1) % config.train_every == 0:
            sample = rng.sample(replay, min(config.batch_size, len(replay)))
            batch = Transition(*(np.asarray(x) for x in zip(*sample)))
            batch = batch._replace(action=batch.action.astype(np.int32),
                                   reward=batch.reward.astype(np.float32))
            learn_steps += 1
            online, target, opt_state, _, _ = learn(online, target, opt_state, batch, learn_steps)
    jax.block_until_ready(online)
    seconds = time.perf_counter() - start
    result = {"frames_per_second": config.num_frames / seconds, "run_s": seconds}
    if evaluate:
        result["final_eval_return"] = float(np.mean(greedy_returns(
            gym.make("CartPole-v1"), q_values, online, config.final_eval_episodes, seed)))
    return result


def greedy_returns(env, q_values, params, episodes: int, seed: int) -> np.ndarray:
    """The tutorial's evaluation: a separate environment, episode i started from seed
    `seed + 1000 + i`; the return of each episode."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + 1000 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(
                int(jnp.argmax(q_values(params, obs))))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return np.array(returns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", action="store_true", help="final greedy evaluation")
    args = parser.parse_args()
    # The tutorial's semantics: a time limit ends the episode as a termination does.
    config = Config(num_frames=args.num_frames, bootstrap_on_truncation=False)
    print(json.dumps(run(config, args.seed, args.evaluate)))


if __name__ == "__main__":
    main()
