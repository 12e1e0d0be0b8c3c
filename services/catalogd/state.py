"""catalogd's State: the dataset catalog and the subject governance over it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.catalogd.governance import SubjectGovernance
from services.catalogd.service import DatasetCatalog


@dataclass(frozen=True, slots=True)
class State:
    catalog: DatasetCatalog
    governance: SubjectGovernance


async def dataset_catalog(request: Request) -> DatasetCatalog:
    return state_of(request, State).catalog


async def subject_governance(request: Request) -> SubjectGovernance:
    return state_of(request, State).governance
