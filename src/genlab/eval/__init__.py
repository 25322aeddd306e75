"""Metrics. Images: FID, precision/recall and memorisation in the feature space of genlab's emoji network."""
