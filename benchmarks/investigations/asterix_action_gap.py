"""Why Asterix needs the pooled network: do a trained agent's Q-values tell which action
kills? Trains the flattened (`network="cnn"`, 16 filters) and the pooled (the preset's)
networks on Asterix-MinAtar, then reads their Q-values on random-policy play (32,000
frames that none of them trained on):

- spread: mean over states of the largest minus the smallest Q-value;
- death gap: on frames where the random action killed the player, that action's Q-value
  minus the mean of the other four (an agent that knows what kills has it well below 0);
- deaths at argmin: how often that action had the lowest Q-value (chance: 0.2).

    python benchmarks/investigations/asterix_action_gap.py --num-seeds 2
"""

import argparse

import jax
import numpy as np

from purejaxdqn import Config, make_q_network, train_seeds
from purejaxdqn.envs import resolve_env

PRESET = "asterix-minatar-100k"
NETWORKS = {"cnn(16), flattened": dict(network="cnn", conv_channels=16),
            "cnn_pool(64), the preset": {}}


def random_play(key, env, env_params, num_envs: int, num_steps: int):
    """Observations, random actions and whether each action ended the episode
    (terminated, not truncated), shape (num_envs * num_steps, ...)."""
    num_actions = env.action_space(env_params).n

    def rollout(key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)

        def step(carry, key):
            obs, state = carry
            action_key, step_key = jax.random.split(key)
            action = jax.random.randint(action_key, (), 0, num_actions)
            next_obs, state, _, terminated, _, _ = env.step(step_key, state, action, env_params)
            return (next_obs, state), (obs, action, terminated)

        _, frames = jax.lax.scan(step, (obs, state), jax.random.split(key, num_steps))
        return frames

    frames = jax.jit(jax.vmap(rollout))(jax.random.split(key, num_envs))
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), frames)


def action_gap(q: np.ndarray, actions: np.ndarray, died: np.ndarray) -> dict:
    taken = q[np.arange(len(actions)), actions]
    others = (q.sum(axis=1) - taken) / (q.shape[1] - 1)
    return {"spread": np.mean(q.max(axis=1) - q.min(axis=1)),
            "death gap": np.mean((taken - others)[died]),
            "deaths at argmin": np.mean(q[died].argmin(axis=1) == actions[died])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=2)
    args = parser.parse_args()

    config = Config.preset(PRESET)
    env, env_params, _ = resolve_env(config.env_name)
    obs, actions, died = random_play(jax.random.key(123), env, env_params, 16, 2_000)
    actions, died = np.asarray(actions), np.asarray(died)
    print(f"random play: {len(actions):,} frames, {died.sum()} deaths")
    print("| network | final greedy return | spread | death gap | deaths at argmin |")
    print("|---|---|---|---|---|")
    for name, overrides in NETWORKS.items():
        config = Config.preset(PRESET, **overrides)
        network = make_q_network(config)
        result = train_seeds(config, args.num_seeds)
        for seed in range(args.num_seeds):
            params = jax.tree.map(lambda x: x[seed], result.params)
            q = np.asarray(jax.jit(network.apply)(params, obs))
            gap = action_gap(q, actions, died)
            final = float(result.metrics["final_eval_return"][seed])
            print(f"| {name}, seed {seed} | {final:.1f} | {gap['spread']:.3f} | "
                  f"{gap['death gap']:+.3f} | {gap['deaths at argmin']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
