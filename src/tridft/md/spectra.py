"""Former home of ``tridft.spectra.correlation``: its public names, re-exported."""

from tridft.spectra.correlation import *  # noqa: F401,F403
