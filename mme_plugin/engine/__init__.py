"""engine components of the MME plugin."""

__all__: list = []
