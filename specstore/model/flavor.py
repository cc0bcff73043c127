"""The flavor (instance type) a spec was requested with."""

from __future__ import annotations

from pydantic import Field

from specstore.model.base import (
    NonEmptyStr,
    NonNegativeInt,
    PositiveInt,
    SortedDict,
    SpecModel,
    StrMap,
)


class Flavor(SpecModel):
    """Sizes and extra specs of a flavor; ``extra_specs`` carries scheduler-visible traits."""

    flavorid: NonEmptyStr
    name: NonEmptyStr
    memory_mb: PositiveInt
    vcpus: PositiveInt
    root_gb: NonNegativeInt = 0
    ephemeral_gb: NonNegativeInt = 0
    swap: NonNegativeInt = 0
    id: int | None = None
    rxtx_factor: float = Field(default=1.0, ge=0)
    vcpu_weight: NonNegativeInt | None = 0
    disabled: bool = False
    is_public: bool = True
    extra_specs: StrMap = Field(default_factory=SortedDict)
    description: str | None = None
