"""Raw @triton.jit kernels and their launch helpers, installed as ``snnkit.kernels``."""
