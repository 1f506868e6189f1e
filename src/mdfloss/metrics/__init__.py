"""Full-reference image quality metrics without learned weights (in progress)."""
