"""Vibrational spectra of a model.

- ``correlation``: Raman and IR spectra from the polarizability and dipole time series
  of an MD run (time-correlation functions, ``tridft spectrum``);
- ``harmonic``: the Hessian of a model (autograd) and harmonic frequencies;
- ``vibrations``: harmonic vibrational analysis with IR intensities and Raman
  activities (``tridft vibrations``).

The old modules ``tridft.md.spectra``, ``tridft.md.harmonic`` and ``tridft.md.vibrations``
re-export their public names.
"""
