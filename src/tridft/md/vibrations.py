"""Former home of ``tridft.spectra.vibrations``: its public names, re-exported."""

from tridft.spectra.vibrations import *  # noqa: F401,F403
