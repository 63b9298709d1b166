"""The ``tabular`` model family: classification and regression on tables."""

from learnloop.families.tabular.family import (
    TabularFamily,
    TabularInput,
    TabularOutput,
    TabularParams,
)
from learnloop.families.tabular.preprocessing import read_table

__all__ = ["TabularFamily", "TabularInput", "TabularOutput", "TabularParams", "read_table"]
