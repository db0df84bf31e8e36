"""Audio: the frame format, the input/output interface, meters, and the sound-device engine."""
