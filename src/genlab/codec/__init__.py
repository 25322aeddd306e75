"""The neural audio codec: audio <-> codec tokens (EnCodec / SoundStream), the audio alphabet of genlab."""
