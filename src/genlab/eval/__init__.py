"""Metrics. Images: FID, precision/recall and memorisation in the feature space of genlab's emoji network
(``fid``). Text: the edit distance behind word and character error rates (``text``)."""
