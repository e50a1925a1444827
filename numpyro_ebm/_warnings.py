"""Warning category of the library (tests turn it into errors)."""


class NumpyroEBMWarning(UserWarning):
    """A warning emitted by numpyro-ebm."""
