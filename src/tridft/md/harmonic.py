"""Former home of ``tridft.spectra.harmonic``: its public names, re-exported."""

from tridft.spectra.harmonic import *  # noqa: F401,F403
