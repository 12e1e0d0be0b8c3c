"""catalogd routes (SPEC §4): commit a version, list, latest, one version, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from lakehouse_common.contracts.catalog import (
    DatasetDetail,
    DatasetList,
    DatasetManifest,
    VersionCommit,
    VersionHistory,
)
from services.catalogd.service import DatasetCatalog
from services.catalogd.state import dataset_catalog

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])


@router.post(
    "/datasets/{name}/versions",
    status_code=201,
    response_model=DatasetManifest,
    response_model_by_alias=True,
    summary="Commit the next version of a dataset (create-only: a lost race answers 409).",
)
async def commit_version(
    catalog: Annotated[DatasetCatalog, Depends(dataset_catalog)], name: str, commit: VersionCommit
) -> DatasetManifest:
    """409 when the version exists or is not latest + 1; 422 when its files are not in the
    store as described."""
    return await run_in_threadpool(catalog.commit, name, commit)


@router.get(
    "/datasets", response_model=DatasetList, summary="Every dataset and its latest version."
)
async def list_datasets(
    catalog: Annotated[DatasetCatalog, Depends(dataset_catalog)],
) -> DatasetList:
    """Datasets in name order."""
    return await run_in_threadpool(catalog.list_datasets)


@router.get(
    "/datasets/{name}",
    response_model=DatasetDetail,
    response_model_by_alias=True,
    summary="A dataset's latest manifest and its version numbers.",
)
async def get_dataset(
    catalog: Annotated[DatasetCatalog, Depends(dataset_catalog)], name: str
) -> DatasetDetail:
    """404 when no version of the dataset exists."""
    return await run_in_threadpool(catalog.get_dataset, name)


@router.get(
    "/datasets/{name}/versions",
    response_model=VersionHistory,
    response_model_by_alias=True,
    summary="Every manifest of a dataset, oldest first.",
)
async def get_history(
    catalog: Annotated[DatasetCatalog, Depends(dataset_catalog)], name: str
) -> VersionHistory:
    """404 when no version of the dataset exists."""
    return await run_in_threadpool(catalog.history, name)


@router.get(
    "/datasets/{name}/versions/{version}",
    response_model=DatasetManifest,
    response_model_by_alias=True,
    summary="One version's manifest.",
)
async def get_version(
    catalog: Annotated[DatasetCatalog, Depends(dataset_catalog)],
    name: str,
    version: Annotated[int, Path(ge=1)],
) -> DatasetManifest:
    """404 when that version does not exist."""
    return await run_in_threadpool(catalog.get_version, name, version)
