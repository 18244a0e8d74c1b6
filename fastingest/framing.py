"""Pure-Python reference framing (work in progress)."""
