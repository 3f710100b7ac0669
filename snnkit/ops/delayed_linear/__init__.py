"""``delayed_linear``: a linear layer with one learnable delay per synapse (DCLS); see the module files."""
