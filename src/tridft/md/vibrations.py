"""Former home of ``tridft.spectra.vibrations``: this name is that module itself."""

import sys

from tridft.spectra import vibrations as _module

sys.modules[__name__] = _module
