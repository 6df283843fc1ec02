"""`purejaxdqn render`: one greedy episode of a trained agent, drawn with matplotlib into a
GIF. CartPole is drawn from its state (cart and pole); environments with image
observations (MinAtar) are drawn from the observation, one colour per channel.
(gymnax's own visualiser needs gymnasium and pygame for the classic-control games.)"""

from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; this module is imported by `purejaxdqn render` alone
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import animation, patches  # noqa: E402

from purejaxdqn.evaluation import play_episode
from purejaxdqn.policies import greedy_policy
from purejaxdqn.runs import load_run


def greedy_episode(env, env_params, network, params, key):
    """(env states, observations, rewards) of one greedy episode, up to its end."""
    _, (states, observations, rewards, done_before) = jax.jit(lambda: play_episode(
        key, greedy_policy(network, params, env), env, env_params))()
    length = int(np.argmax(np.asarray(done_before))) or len(rewards)  # steps before the end
    # (A state's random keys, as Octax's emulator keeps, are no numpy arrays: kept as keys.)
    return (jax.tree.map(lambda x: x[:length] if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else np.asarray(x[:length]), states),
            np.asarray(observations[:length]), np.asarray(rewards[:length]))


def _draw_cartpole(ax, state, i):
    x, theta = float(state.x[i]), float(state.theta[i])
    ax.set(xlim=(-2.6, 2.6), ylim=(-0.4, 1.6), aspect="equal", yticks=[])
    ax.axhline(0, color="grey", lw=1)
    ax.add_patch(patches.Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="tab:blue"))
    ax.plot([x, x + np.sin(theta)], [0.0, np.cos(theta)], color="tab:orange", lw=5)


def _draw_image(ax, obs):
    channels = obs.shape[-1]
    colours = matplotlib.colormaps["tab10"](np.arange(channels))[:, :3]
    image = np.ones(obs.shape[:2] + (3,))
    for c in range(channels):
        image[obs[..., c] > 0.5] = colours[c]
    ax.imshow(image, interpolation="nearest")
    ax.set(xticks=[], yticks=[])


def render_run(run_dir: Path, seed_index: int, out: Path, seed: int = 0) -> float:
    """Write a GIF of a greedy episode of seed `seed_index` of a saved run; its return."""
    config, params, env, env_params, network = load_run(run_dir)
    num_seeds = len(jax.tree.leaves(params)[0])
    if not 0 <= seed_index < num_seeds:
        raise ValueError(f"--seed-index must be in [0, {num_seeds}), got {seed_index}")
    if config.env_name != "CartPole-v1" and len(env.observation_space(env_params).shape) != 3:
        raise ValueError(f"render draws CartPole-v1 and image-observation games, "
                         f"not {config.env_name}")
    params = jax.tree.map(lambda x: x[seed_index], params)
    states, observations, rewards = greedy_episode(env, env_params, network, params,
                                                   jax.random.key(seed))

    fig, ax = plt.subplots(figsize=(4, 3))

    def frame(i):
        ax.clear()
        if config.env_name == "CartPole-v1":
            _draw_cartpole(ax, states, i)
        else:
            _draw_image(ax, observations[i])
        ax.set_title(f"{config.env_name}  step {i + 1}  return {rewards[:i + 1].sum():.0f}")

    frames = range(0, len(rewards), max(1, len(rewards) // 150))  # at most ~150 frames
    ani = animation.FuncAnimation(fig, frame, frames=frames)
    ani.save(out, writer=animation.PillowWriter(fps=20))
    plt.close(fig)
    return float(rewards.sum())
