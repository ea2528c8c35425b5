"""Settings of the datasets service (environment, prefix ``VTP_``)."""

from pydantic import Field

from vtp_runtime.settings import ServiceSettings

GIB = 1 << 30


class DatasetsSettings(ServiceSettings):
    service_name: str = "datasets"
    http_port: int = 8103

    upload_dir: str = Field(".vtp/data/uploads", description="Where uploads are spooled while they are validated.")
    max_upload_bytes: int = Field(50 * GIB, description="Largest accepted upload (the zip as sent).")
    max_archive_entries: int = Field(200_000, description="Most entries a dataset zip may hold.")
    max_uncompressed_bytes: int = Field(200 * GIB, description="Largest total uncompressed size of a zip.")
    max_compression_ratio: float = Field(200.0, description="Largest uncompressed/compressed ratio of one entry.")
    max_json_bytes: int = Field(256 << 20, description="Largest annotation or metadata file.")
    max_image_pixels: int = Field(100_000_000, description="Largest decoded image (width x height).")
    max_problems: int = Field(200, description="Most problems reported for one rejected upload.")
    probe_workers: int = Field(4, ge=1, description="Threads decoding images during validation.")
    blob_gc_interval_seconds: float = Field(
        3600.0, ge=0, description="How often the orphan-blob sweep runs (0: never, e.g. on read-only replicas)."
    )
    blob_gc_grace_hours: float = Field(
        24.0, gt=0, description="Orphan blobs younger than this are kept (uploads in flight store before they commit)."
    )
    # A dataset's blobs are made durable with one barrier before its rows commit (see content.store_content).
    storage_sync_each_write: bool = False
