"""Pure NumPy neural networks: no files, no logging, no clock, no Flask."""
