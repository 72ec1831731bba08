"""The optimal noise predictor for a one-image dataset, shared by the sampler and bound tests."""

import equinox as eqx
import jax


class Oracle(eqx.Module):
    """The optimal noise predictor when the data is one image x0: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    x0: jax.Array
    sqrt_abar: jax.Array
    sqrt_1m_abar: jax.Array
    calls: list = eqx.field(static=True, default_factory=list)

    def __call__(self, x, t):
        self.calls.append(1)  # runs only while tracing: counts compilations
        return (x - self.sqrt_abar[t] * self.x0) / self.sqrt_1m_abar[t]


def make_oracle(schedule, x0):
    return Oracle(x0, schedule.sqrt_alphas_cumprod, schedule.sqrt_one_minus_alphas_cumprod)
