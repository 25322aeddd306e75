"""Provenance of what genlab makes: the audio watermark (:mod:`.watermark`) and the records written with each file
(:mod:`.record`)."""
