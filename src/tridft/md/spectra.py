"""Former home of ``tridft.spectra.correlation``: this name is that module itself."""

import sys

from tridft.spectra import correlation as _module

sys.modules[__name__] = _module
