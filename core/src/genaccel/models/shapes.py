"""attrs validators for the shape records of model presets (widths, heads, layers, patches): a field
that must be at least 1, and a field that must divide another (widths into heads, images into patches)."""

from __future__ import annotations


def positive(instance, attribute, value) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def divides(numerator: str):
    """A validator: the field divides the field named ``numerator``."""

    def check(instance, attribute, value) -> None:
        whole = getattr(instance, numerator)
        if value < 1 or whole % value:
            raise ValueError(f"{attribute.name}={value} must divide {numerator}={whole}")

    return check
