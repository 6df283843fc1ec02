"""What is imported late or not at all: gymnax, and the optional environment suites.

gymnax is imported inside functions: importing it builds arrays, which starts JAX's
backend, and `import purejaxdqn` must not (a multi-host program calls
`jax.distributed.initialize()` after its imports). The suites are extras
(`pip install "purejaxdqn[navix]"`): `SUITE_MODULES` is the one map from a suite's name to
its module, read by the adapters (`purejaxdqn.suites`) and the tests alike."""

import importlib
import sys
import types

SUITE_MODULES = {"craftax": "craftax.craftax_env", "navix": "navix", "jumanji": "jumanji",
                 "xminigrid": "xminigrid", "octax": "octax.environments"}
SUITES = tuple(SUITE_MODULES)  # adapted in suites.py


class _Deferred(types.ModuleType):
    """A stand-in for a module that imports the real one on first attribute access."""

    def __getattr__(self, attr):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def import_gymnax():
    """gymnax, without paying at import for seaborn (and scipy under it), which two of its
    environment modules import for colour palettes used only in rendering: seaborn is
    imported on first use instead. This is a second or more off every run's start."""
    if "gymnax" not in sys.modules and "seaborn" not in sys.modules:
        sys.modules["seaborn"] = _Deferred("seaborn")
    import gymnax

    return gymnax


def import_suite(suite: str):
    """The suite's module, or a one-line error naming the extra that installs it."""
    try:
        return importlib.import_module(SUITE_MODULES[suite])
    except ImportError as error:
        raise ValueError(f"the {suite} suite is not installed ({error.msg}): "
                         f"pip install \"purejaxdqn[{suite}]\"") from None


def suite_of(env) -> str | None:
    """The suite an environment object comes from (by its classes' modules), or None."""
    for cls in type(env).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in SUITES:
            return root
    return None
