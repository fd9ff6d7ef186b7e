"""Models of the MME plugin."""

__all__: list = []
