"""``wkv``: the RWKV weighted-key-value recurrence; see the module files."""
