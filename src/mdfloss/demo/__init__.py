"""``mdfloss demo``, the main job of the README: train a quick loss, then reconstruct an image
from noise with L2 and with each MDF loss (:mod:`~mdfloss.demo.command`)."""
