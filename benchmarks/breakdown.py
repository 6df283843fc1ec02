"""Where the time of one seed goes, and the random-policy baseline the README quotes.

    python benchmarks/breakdown.py

Times (compiled ahead, best of 3): the whole default run with and without periodic
evaluation, acting alone (warm-up covering the whole run), and 9,750 learning steps alone.
"""

import time

import jax
import jax.numpy as jnp

from purejaxdqn import Config, make_train
from purejaxdqn.agent import learn_step, make_optimizer, make_q_network
from purejaxdqn.replay import Transition
from purejaxdqn.envs import resolve_env
from purejaxdqn.evaluation import random_policy_returns


def best_of_3(fn, *args) -> float:
    compiled = jax.jit(fn).lower(*args).compile()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def learning_steps(config: Config, count: int):
    network = make_q_network(config, 2, (4,))
    hparams = config.hyperparams()
    obs = jax.random.normal(jax.random.key(0), (config.batch_size, 4))
    batch = Transition(obs, jnp.zeros(config.batch_size, jnp.int32), jnp.ones(config.batch_size),
                       jnp.zeros(config.batch_size, bool), 0.5 * obs)
    params = network.init(jax.random.key(1), obs[0])
    opt_state = make_optimizer(hparams.learning_rate, hparams.max_grad_norm).init(params)

    def run(online, target, opt_state):
        def body(carry, learn_steps):
            return learn_step(*carry, batch, learn_steps, hparams, network, config)[:3], None
        return jax.lax.scan(body, (online, target, opt_state), jnp.arange(1, count + 1))[0]

    return best_of_3(run, params, params, opt_state)


def random_policy_return(episodes: int = 2_000) -> float:
    env, env_params, _ = resolve_env("CartPole-v1")
    program = jax.jit(lambda key: random_policy_returns(key, env, env_params, episodes))
    return float(jnp.mean(program(jax.random.key(0))))


def main():
    key = jax.random.key(0)
    config = Config()
    full = best_of_3(make_train(config), key)
    no_eval = best_of_3(make_train(Config(eval_every=0)), key)
    acting = best_of_3(make_train(Config(eval_every=0, warmup_steps=39_996)), key)
    steps = config.num_frames // config.train_every - config.warmup_steps // config.train_every
    learning = learning_steps(config, steps)
    print(f"1 seed, 40,000 frames: default {full:.2f} s, without periodic evaluation "
          f"{no_eval:.2f} s (evaluation {full / no_eval - 1:+.0%})")
    print(f"acting alone (40,000 frames, no learning) {acting:.2f} s "
          f"({acting / config.num_frames * 1e6:.1f} us/frame)")
    print(f"{steps:,} learning steps alone {learning:.2f} s ({learning / steps * 1e6:.0f} us each)")
    print(f"random policy on CartPole-v1: mean return {random_policy_return():.1f} over 2,000 episodes")


if __name__ == "__main__":
    main()
