"""A convolution written as one matmul, for many seeds' filters at once."""

# `Config.network="cnn_strided"`: (filters, kernel, stride) of each layer, Nature-DQN's
# 8/4/3 kernels with strides 4/2/1 on 84x84 frames scaled to 32x64 ones.
STRIDED_STACK = ((32, 4, 2), (64, 4, 2), (64, 3, 1))


def strided_output_shape(height: int, width: int) -> tuple[int, int]:
    """The (height, width) of `STRIDED_STACK`'s output on frames of (height, width), a
    side 0 or less where the frames are too small."""
    for _, k, s in STRIDED_STACK:
        height, width = (height - k) // s + 1, (width - k) // s + 1
    return height, width

import haiku as hk
import jax.numpy as jnp
import numpy as np


class PatchConv2D(hk.Module):
    """`hk.Conv2D(output_channels, kernel_shape, stride, padding="VALID")` (NHWC), with the
    same parameters ("w": (kh, kw, in, out), "b") and initialisers, computed as one
    matmul of the stacked shifted windows (im2col).

    Why not `hk.Conv2D`: vmapped over seeds, each seed has its own filters, and XLA on CPU
    lowers that batched convolution to a grouped one, which was 3x slower forward and
    1.5x slower through the gradient than this matmul (16 seeds x 32 MinAtar frames).
    """

    def __init__(self, output_channels: int, kernel_shape: int, stride: int = 1,
                 name: str | None = None):
        super().__init__(name=name)
        self.output_channels = output_channels
        self.kernel_shape = kernel_shape
        self.stride = stride

    def __call__(self, x):
        k, s, channels = self.kernel_shape, self.stride, x.shape[-1]
        w_shape = (k, k, channels, self.output_channels)
        stddev = 1.0 / np.sqrt(np.prod(w_shape[:-1]))
        w = hk.get_parameter("w", w_shape, x.dtype, hk.initializers.TruncatedNormal(stddev))
        b = hk.get_parameter("b", (self.output_channels,), x.dtype, jnp.zeros)
        height, width = (x.shape[-3] - k) // s + 1, (x.shape[-2] - k) // s + 1
        rows, cols = s * (height - 1) + 1, s * (width - 1) + 1  # the spans the windows start in
        windows = jnp.concatenate([x[..., i:i + rows:s, j:j + cols:s, :]
                                   for i in range(k) for j in range(k)], axis=-1)
        return windows @ w.reshape(-1, self.output_channels) + b
