"""Factorised Gaussian noisy linear layers (Fortunato et al., 2018) in Haiku.

Haiku ships no noisy layer, so this is the one layer written here. The noise comes from an
explicit key argument rather than `hk.next_rng_key`, so the same network serves acting
and learning (a key: fresh noise) and evaluation (no key: the mean weights).
"""

import haiku as hk
import jax
import jax.numpy as jnp


def _scaled(noise):
    return jnp.sign(noise) * jnp.sqrt(jnp.abs(noise))


class NoisyLinear(hk.Module):
    """y = x (w_mu + w_sigma * eps_in eps_out^T) + b_mu + b_sigma * eps_out."""

    def __init__(self, output_size: int, sigma0: float = 0.5, name: str | None = None):
        super().__init__(name=name)
        self.output_size = output_size
        self.sigma0 = sigma0

    def __call__(self, x, key=None):
        input_size = x.shape[-1]
        bound = 1.0 / jnp.sqrt(input_size)
        uniform = hk.initializers.RandomUniform(-bound, bound)
        sigma = hk.initializers.Constant(self.sigma0 / jnp.sqrt(input_size))
        w_mu = hk.get_parameter("w_mu", [input_size, self.output_size], init=uniform)
        b_mu = hk.get_parameter("b_mu", [self.output_size], init=uniform)
        w_sigma = hk.get_parameter("w_sigma", [input_size, self.output_size], init=sigma)
        b_sigma = hk.get_parameter("b_sigma", [self.output_size], init=sigma)
        if key is None:
            return x @ w_mu + b_mu
        in_key, out_key = jax.random.split(key)
        eps_in = _scaled(jax.random.normal(in_key, (input_size,)))
        eps_out = _scaled(jax.random.normal(out_key, (self.output_size,)))
        return x @ (w_mu + w_sigma * jnp.outer(eps_in, eps_out)) + b_mu + b_sigma * eps_out
