"""Public: the distributions a grid module's values may be, ``from hpsearch.space import ...``.

A grid module (standard library only, as this module is) writes::

    from hpsearch.space import loguniform, uniformint
    grid = {"lr": loguniform(1e-5, 1e-1), "layers": uniformint(1, 4), "act": ["relu", "tanh"]}

What each one draws: :mod:`hpsearch.spec.distributions`.
"""

from hpsearch.spec.distributions import (
    Distribution,
    categorical,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    uniform,
    uniformint,
)

__all__ = ["Distribution", "categorical", "lognormal", "loguniform", "normal", "qlognormal",
           "qloguniform", "qnormal", "quniform", "uniform", "uniformint"]
