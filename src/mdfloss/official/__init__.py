"""The authors' released discriminators (gfxdisp/mdf ``Ds_*.pth``), read without unpickling code.

* :mod:`~mdfloss.official.reader`: the allow-list unpickler and the SinGAN structure check;
* :mod:`~mdfloss.official.command`: ``mdfloss convert``, a ``Ds_*.pth`` to an mdfloss weight file.
"""

from .reader import UnsafePickleError, load_official

__all__ = ["UnsafePickleError", "load_official"]
