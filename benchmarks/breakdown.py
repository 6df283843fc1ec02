"""Where the time of one seed goes, and the random-policy baseline the README quotes.

    python benchmarks/breakdown.py

Times (compiled ahead, best of 3): the whole default run with and without periodic
evaluation, acting alone (warm-up covering the whole run), and 9,750 learning steps alone;
then JAX's profiler splits one learning step into XLA's operations, the matrix products
(with their shapes, and whether XLA hands them to YNNPACK) apart from everything else.
"""

import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from gpu import device_ops
from purejaxdqn import Config, make_train
from purejaxdqn.dqn import learn_step
from purejaxdqn.learning import make_optimizer
from purejaxdqn.networks import make_q_network
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


def learning_program(config: Config, count: int):
    """`count` learning steps of `config` on one fixed batch, and its arguments."""
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

    return run, (params, params, opt_state)


def learning_step_ops(config: Config, count: int = 2_000) -> list[tuple[str, float, str]]:
    """(operation, microseconds per learning step, what it is) for each XLA operation of
    the learning step, slowest first; "what" describes matrix products, else is empty."""
    run, args = learning_program(config, count)
    compiled = jax.jit(run).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(compiled(*args))
        trace = json.load(gzip.open(next(Path(tmp).rglob("perfetto_trace.json.gz"))))
    trace = trace["traceEvents"] if isinstance(trace, dict) else trace
    micros = collections.Counter()
    for event in device_ops(trace):
        micros[event["name"]] += event["dur"] / count
    text = compiled.as_text()
    bodies = {m[1]: m[2] for m in re.finditer(r"^%([\w.-]+) [^\n]*\{\n(.*?)^\}", text,
                                              re.S | re.M)}
    ops = {m[1]: m[2] for m in re.finditer(r"^ +(?:ROOT )?%([\w.-]+) = ([^\n]*)", text, re.M)}

    def what(name):  # a matrix product: a dot, or a fusion of one (YNNPACK's)
        line = ops.get(name, "")
        called = re.search(r"calls=%([\w.-]+)", line)
        if " dot(" in line:
            dims = re.search(r"lhs_contracting_dims=\{\d*\}, rhs_contracting_dims=\{\d*\}", line)
            return f"XLA's own dot, {line.split(' ')[0]}, {dims[0] if dims else ''}"
        if called and " dot(" in bodies.get(called[1], ""):
            return f"YNNPACK, {line.split(' ')[0]}"
        return ""

    return sorted(((name, us, what(name)) for name, us in micros.items()), key=lambda r: -r[1])


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
    run, args = learning_program(config, steps)
    learning = best_of_3(run, *args)
    print(f"1 seed, 40,000 frames: default {full:.2f} s, without periodic evaluation "
          f"{no_eval:.2f} s (evaluation {full / no_eval - 1:+.0%})")
    print(f"acting alone (40,000 frames, no learning) {acting:.2f} s "
          f"({acting / config.num_frames * 1e6:.1f} us/frame)")
    print(f"{steps:,} learning steps alone {learning:.2f} s ({learning / steps * 1e6:.0f} us each)")
    print(f"random policy on CartPole-v1: mean return {random_policy_return():.1f} over 2,000 episodes")
    ops = learning_step_ops(config)
    products = [row for row in ops if row[2]]
    total, in_products = sum(us for _, us, _ in ops), sum(us for _, us, _ in products)
    print(f"one learning step, profiled: {total:.0f} us of XLA operations ({len(ops)}), "
          f"{in_products:.0f} us ({in_products / total:.0%}) in its {len(products)} matrix products:")
    for name, us, what in products:
        print(f"  {us:6.1f} us  {name:14s} {what}")
    rest = [row for row in ops if not row[2]]
    print(f"  {sum(us for _, us, _ in rest):6.1f} us  the other {len(rest)} operations, slowest: "
          + ", ".join(f"{name} {us:.1f}" for name, us, _ in rest[:4]))


if __name__ == "__main__":
    main()
