"""The program stays GPU-clean by construction: the default program and one per variant
switch lower for CUDA (no GPU needed) as one loop. A host callback cannot be lowered for
CUDA at all (the last test shows it), so a lowering that succeeds holds none: nothing in
the training loop goes back to Python."""

import jax
import pytest

from purejaxdqn import Config, make_train

MINATAR = dict(env_name="Breakout-MinAtar", batch_size=32, conv_channels=4)


@pytest.mark.parametrize("overrides", [
    {},
    {"double_q": True, "dueling": True},
    {"loss": "mse", "target_update_period": 100},
    {"n_step": 3, "prioritized": True},
    {"noisy": True, "distributional": True},
    {"num_envs": 8, "n_step": 3},
    {"network": "cnn", **MINATAR},
    {"network": "cnn_pool", **MINATAR},
], ids=lambda o: ",".join(o) or "default")
def test_lowers_for_cuda_without_host_callbacks(overrides):
    train = make_train(Config(**overrides))
    text = cuda_program(train, jax.random.key(0))
    assert "stablehlo.while" in text  # the whole run, as one program
    assert not [op for op in ("infeed", "outfeed") if op in text]  # nor host feeds


def cuda_program(fn, *args) -> str:
    return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text().lower()


def test_a_host_callback_would_be_caught():
    # Without a GPU, a host callback cannot even be lowered for CUDA: the test above fails
    # with this error.
    def with_print(x):
        jax.debug.print("{}", x)
        return x + 1
    with pytest.raises(ValueError, match="lowering platform cuda"):
        cuda_program(with_print, 1.0)
