"""ganmusic: learn a musical style from labelled MIDI and generate new music in it."""

__version__ = "0.1.0"
