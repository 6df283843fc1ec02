"""What the suites' adapters cost: a random policy over 16 environments, stepped by each
suite on its own as its users step it, by the adapter (`purejaxdqn.envs.step_envs`), and
inside the training loop's acting step (`purejaxdqn.acting.act`, epsilon 1, the default
network's forward pass included). Environment steps per second, compile apart; each
measurement in a fresh process, contestants interleaved, medians.

    python benchmarks/suites_overhead.py [--suites craftax navix jumanji xminigrid octax]
        [--envs 16] [--steps 2000] [--repeats 3]

(A subset of the suites writes its own results file, named after them.) Octax's own
stepping is its gymnax wrapper's, with gymnax's auto-reset.

Craftax's own stepping is shown with its auto-reset (a world generated every step, under
vmap) and without (no episode is ever reset: the ceiling).
"""

import argparse
import json
import sys
import time

import harness

NAMES = {"craftax": "Craftax-Classic-Symbolic-v1", "navix": "Navix-Empty-8x8-v0",
         "jumanji": "Snake-v1", "xminigrid": "MiniGrid-Empty-8x8", "octax": "brix"}
CONTESTANTS = {"craftax": ["own auto-reset", "own no reset", "adapter", "loop"],
               "navix": ["own auto-reset", "adapter", "loop"],
               "jumanji": ["own auto-reset", "adapter", "loop"],
               "xminigrid": ["own auto-reset", "adapter", "loop"],
               "octax": ["own auto-reset", "adapter", "loop"]}


def own_stepper(suite: str):
    """(reset(key), step(key, state, action), num_actions) of the suite as its users step
    it, with its own auto-reset."""
    name = NAMES[suite]
    if suite == "craftax":
        from craftax.craftax_env import make_craftax_env_from_name

        def make(auto_reset):
            env = make_craftax_env_from_name(name, auto_reset=auto_reset)
            params = env.default_params
            return (lambda k: env.reset(k, params)[1],
                    lambda k, s, a: env.step(k, s, a, params)[1], env.num_actions)

        return make
    if suite == "navix":
        import navix

        env = navix.make(name)
        return lambda _: (env.reset, lambda k, s, a: env.step(s, a), len(env.action_set))
    if suite == "octax":
        from octax.environments import create_environment
        from octax.wrappers import OctaxGymnaxWrapper

        env = OctaxGymnaxWrapper(create_environment(name)[0])
        params = env.default_params
        return lambda _: (lambda k: env.reset(k, params)[1],
                          lambda k, s, a: env.step(k, s, a, params)[1], env.num_actions)
    if suite == "jumanji":
        import jumanji
        from jumanji.wrappers import AutoResetWrapper

        env = AutoResetWrapper(jumanji.make(name))
        return lambda _: (lambda k: env.reset(k)[0], lambda k, s, a: env.step(s, a)[0],
                          int(env.action_spec.num_values))
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(name)
    env = GymAutoResetWrapper(env)
    return lambda _: (lambda k: env.reset(params, k), lambda k, s, a: env.step(params, s, a),
                      env.num_actions(params))


def measure(suite: str, contestant: str, envs: int, steps: int) -> dict:
    """Steps/s of one contestant (in this process): a jitted scan of `steps` steps of
    `envs` environments, timed after its compile."""
    import jax

    keys = jax.random.split(jax.random.key(0), envs)
    if contestant.startswith("own"):
        reset, step, num_actions = own_stepper(suite)(contestant == "own auto-reset")
        state = jax.vmap(reset)(keys)

        def body(state, key):
            step_keys = jax.random.split(key, envs)
            actions = jax.random.randint(key, (envs,), 0, num_actions)
            return jax.vmap(step)(step_keys, state, actions), None
    elif contestant == "adapter":
        from purejaxdqn.envs import resolve_env, step_envs

        env, params, num_actions = resolve_env(f"{suite}:{NAMES[suite]}")
        state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)[1]

        def body(state, key):
            actions = jax.random.randint(key, (envs,), 0, num_actions)
            return step_envs(env, jax.random.split(key, envs), state, actions, params)[1], None
    else:
        from purejaxdqn import Config
        from purejaxdqn.acting import act
        from purejaxdqn.dqn import init_state
        from purejaxdqn.train import make_parts

        config = Config(env_name=f"{suite}:{NAMES[suite]}", num_envs=envs, train_every=envs,
                        buffer_size=1000, eps_start=1.0, eps_end=1.0)
        parts = make_parts(config)
        hparams = config.hyperparams()
        state = init_state(parts, jax.random.key(0), hparams)

        def body(state, key):
            return act(parts, state, key, hparams)[0], None

    run = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, steps))[0])
    start = time.perf_counter()
    compiled = run.lower(state, jax.random.key(1)).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(state, jax.random.key(1)))  # warm
    start = time.perf_counter()
    jax.block_until_ready(compiled(state, jax.random.key(2)))
    run_s = time.perf_counter() - start
    return {"compile_s": compile_s, "run_s": run_s, "steps_per_s": envs * steps / run_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=list(NAMES), choices=list(NAMES))
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("SUITE", "CONTESTANT"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.envs, args.steps)))
        return

    env = harness.child_env(devices=1)
    lines = [f"$ python benchmarks/suites_overhead.py {' '.join(sys.argv[1:])}", "",
             f"A random policy over {args.envs} environments, {args.steps} steps in one jitted "
             f"scan; environment steps/s, median of {args.repeats} fresh processes, "
             f"interleaved; compile apart. 'loop' is the training loop's acting step "
             f"(epsilon 1, the default network's forward pass included).", "",
             "| suite | environment | stepped by | steps/s | / the suite's own auto-reset "
             "| compile s |", "|---|---|---|---:|---:|---:|"]
    for suite in args.suites:
        runs = harness.interleaved(
            {c: (lambda c=c: harness.run_python(
                [__file__, "--child", suite, c, "--envs", args.envs, "--steps", args.steps],
                env=env)) for c in CONTESTANTS[suite]},
            args.repeats, report=lambda name, r: print(f"  {suite} {name}: "
                                                       f"{r['steps_per_s']:,.0f}/s"))
        own = harness.median(runs["own auto-reset"], "steps_per_s")
        for contestant, results in runs.items():
            rate = harness.median(results, "steps_per_s")
            lines.append(f"| {suite} | {NAMES[suite]} | {contestant} | {rate:,.0f} | "
                         f"{rate / own:.2f}x | {harness.median(results, 'compile_s'):.1f} |")
    subset = "" if set(args.suites) == set(NAMES) else "-" + "-".join(args.suites)
    harness.write_table("suites-overhead" + subset, lines)


if __name__ == "__main__":
    main()
