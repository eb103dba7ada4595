"""Former home of ``tridft.spectra.harmonic``: this name is that module itself."""

import sys

from tridft.spectra import harmonic as _module

sys.modules[__name__] = _module
