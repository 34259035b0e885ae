"""The ``c2rcc_flags`` bit table of SNAP's C2RCC-MSI operator, in SNAP's order.

Shared by the emulator (which writes SNAP-shaped products), the native C2RCC port (which sets the
bits) and compositing (which masks on them), so that all three agree on one definition.
"""

from __future__ import annotations

from typing import Final

#: (name, bit, description) in SNAP's ``C2rccMsiAlgorithm.FLAG_INDEX_*`` order.
C2RCC_FLAGS: Final[tuple[tuple[str, int, str], ...]] = (
    ("Rtosa_OOS", 0, "The input spectrum to the atmospheric correction neural net was out of the scope of the training range and the inversion is likely to be wrong"),
    ("Rtosa_OOR", 1, "The input spectrum to the atmospheric correction neural net out of training range"),
    ("Rhow_OOR", 2, "One of the inputs to the IOP retrieval neural net is out of training range"),
    ("Cloud_risk", 3, "High downwelling transmission is indicating cloudy conditions"),
    ("Iop_OOR", 4, "One of the IOPs is out of range"),
    ("Apig_at_max", 5, "Apig output of the IOP retrieval neural net is at its maximum. This means that the true value is this value or higher."),
    ("Adet_at_max", 6, "Adet output of the IOP retrieval neural net is at its maximum. This means that the true value is this value or higher."),
    ("Agelb_at_max", 7, "Agelb output of the IOP retrieval neural net is at its maximum. This means that the true value is this value or higher."),
    ("Bpart_at_max", 8, "Bpart output of the IOP retrieval neural net is at its maximum. This means that the true value is this value or higher."),
    ("Bwit_at_max", 9, "Bwit output of the IOP retrieval neural net is at its maximum. This means that the true value is this value or higher."),
    ("Apig_at_min", 10, "Apig output of the IOP retrieval neural net is at its minimum. This means that the true value is this value or lower."),
    ("Adet_at_min", 11, "Adet output of the IOP retrieval neural net is at its minimum. This means that the true value is this value or lower."),
    ("Agelb_at_min", 12, "Agelb output of the IOP retrieval neural net is at its minimum. This means that the true value is this value or lower."),
    ("Bpart_at_min", 13, "Bpart output of the IOP retrieval neural net is at its minimum. This means that the true value is this value or lower."),
    ("Bwit_at_min", 14, "Bwit output of the IOP retrieval neural net is at its minimum. This means that the true value is this value or lower."),
    ("Rhow_OOS", 15, "The Rhow input spectrum to IOP neural net is probably not within the training range of the neural net, and the inversion is likely to be wrong."),
    ("Kd489_OOR", 16, "Kd489 is out of range"),
    ("Kdmin_OOR", 17, "Kdmin is out of range"),
    ("Kd489_at_max", 18, "Kdmin is at max"),
    ("Kdmin_at_max", 19, "Kdmin is at max"),
    ("Valid_PE", 31, "The operators valid pixel expression has resolved to true"),
)

#: name -> bit mask
FLAG_MASKS: Final[dict[str, int]] = {name: 1 << bit for name, bit, _ in C2RCC_FLAGS}

#: Flags that make an observation unusable for compositing by default (issue 6).
DEFAULT_EXCLUDE_FLAGS: Final[tuple[str, ...]] = (
    "Cloud_risk",
    "Rtosa_OOR",
    "Rhow_OOR",
    "Iop_OOR",
    "Apig_at_max",
    "Adet_at_max",
    "Agelb_at_max",
    "Bpart_at_max",
    "Bwit_at_max",
    "Kd489_at_max",
    "Kdmin_at_max",
)


def flag_mask(names: list[str] | tuple[str, ...]) -> int:
    """Return the OR of the masks of ``names``; unknown names raise ``KeyError`` listing the valid ones."""
    mask = 0
    for name in names:
        if name not in FLAG_MASKS:
            raise KeyError(f"unknown c2rcc flag {name!r}; known flags: {', '.join(FLAG_MASKS)}")
        mask |= FLAG_MASKS[name]
    return mask
