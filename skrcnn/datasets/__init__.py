"""Datasets: synthetic context-dependent scenes and the paper's benchmarks.

* :func:`make_scenes`: seeded synthetic outdoor scenes in which sky and water
  look the same and only the layout tells them apart (no download).
* :func:`load_stanford_background`: the Stanford Background Dataset
  (Gould et al., ICCV 2009), 715 images, 8 classes.
* :func:`load_sift_flow`: the SIFT Flow dataset (Liu et al.), 2688 images,
  33 classes, with its 2488 / 200 train / test split.

The loaders read the archives as distributed (or their extracted folders)
from :func:`get_data_home`, download them when missing, and keep a binary
cache beside them so that later loads take a second or two.
"""

from ._base import CorruptDataError, DataNotFoundError, get_data_home
from ._scenes import make_scenes
from ._sift_flow import load_sift_flow
from ._stanford import load_stanford_background

__all__ = ["CorruptDataError", "DataNotFoundError", "get_data_home",
           "load_sift_flow", "load_stanford_background", "make_scenes"]
