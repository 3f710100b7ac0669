"""snnkit.plasticity: local learning rules (STDP traces, astrocyte modulation, Tempotron)."""

__all__: list[str] = []
