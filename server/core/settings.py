"""One configuration object for both ways to run, read from ``KMINE_*`` environment variables.

``embedded`` (default): SQLite database and a SQLite-backed Celery broker (kombu's SQLAlchemy
transport) in the data directory; no other service needed. ``production``: set
``KMINE_DATABASE_URL`` (PostgreSQL), ``KMINE_BROKER_URL`` (Redis) and ``KMINE_SECRET_KEY``.
The code path is the same in both: only these URLs differ.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-kmine-default-secret"


MIN_SECRET_BITS = 128


def secret_bits(secret: str) -> float:
    """An upper bound of the secret's entropy: its length × log2(distinct characters). A
    16-character run of one letter has 0 bits; 64 random hex digits have 256."""
    import math

    distinct = len(set(secret))
    return len(secret) * math.log2(distinct) if distinct > 1 else 0.0


class SettingsError(ValueError):
    """The configuration cannot be used (e.g. production with the default secret)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KMINE_", extra="ignore")

    mode: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("kmine-data")
    # Empty (or None) means the embedded default in the data directory, filled in below.
    database_url: str = Field(default="", description="default: sqlite:///<data_dir>/kmine.sqlite")
    broker_url: str = Field(default="", description="default (embedded): sqla+sqlite:///<data_dir>/broker.sqlite")
    queue: str = "kmine"
    secret_key: str = DEFAULT_SECRET
    device: str = "auto"
    demo_dataset: Path | None = None  # default: ../shared/data/covid-qu-ex-sample when present

    # upload limits
    max_upload_bytes: int = 512 * 1024 * 1024
    max_files: int = 5000
    max_unpacked_bytes: int = 2 * 1024 * 1024 * 1024
    max_zip_ratio: float = 200.0
    # 25 megapixels (5000 × 5000; chest X-rays and endoscopy frames are far smaller): at its peak
    # an image costs the API about 17 MB per megapixel (decoded, converted, its full-size masks;
    # benchmarks/hostile.py), so this bounds one request under 500 MB.
    max_image_pixels: int = 25_000_000
    max_checkpoint_bytes: int = 512 * 1024 * 1024

    # serving: model calls run one at a time in the API's inference lane (server/services/inference.py)
    threads: int = Field(default=0, ge=0, le=1024, description="torch threads of this process; 0: every core "
                         "(kmine serve gives half to the API and half to its local worker)")
    max_waiting_predictions: int = Field(default=16, ge=1, le=10_000,
                                         description="model calls that may wait; more are answered 503 + Retry-After")
    predict_batch: int = Field(default=0, ge=0, le=256, description="predictions that wait together and run as one "
                               "batch (one student pass, one SAM decode); 0: 8 on a GPU, 1 on a CPU (batching measured "
                               "slower there: benchmarks/load.py)")

    # jobs
    job_lease_seconds: int = 120
    job_max_attempts: int = 3

    # a worker on a machine without the API's disk: inputs and results go through the API
    api_url: str = Field(default="", description="the API's URL for a worker on another machine "
                         "(e.g. http://api:8000); empty: the worker shares the API's data folder")
    worker_token: str = Field(default="", description="a worker token (kmine token create NAME --role worker) "
                              "the worker sends to the API")

    @field_validator("database_url", "broker_url", mode="before")
    @classmethod
    def _none_is_default(cls, value: str | None) -> str:
        return value or ""

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'kmine.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.sqlite'}"
        return self

    def check_production(self) -> None:
        """Raise :class:`SettingsError` when production mode runs on defaults it must not use."""
        if self.mode != "production":
            return
        problems = []
        if self.secret_key == DEFAULT_SECRET or secret_bits(self.secret_key) < MIN_SECRET_BITS:
            problems.append(f"KMINE_SECRET_KEY is the default or too guessable (under {MIN_SECRET_BITS} bits); "
                            "set a long random secret, e.g. `openssl rand -hex 32`")
        if self.database_url.startswith("sqlite"):
            problems.append("KMINE_DATABASE_URL points at SQLite; production needs PostgreSQL (postgresql+psycopg://...)")
        if self.broker_url.startswith("sqla+"):
            problems.append("KMINE_BROKER_URL is the embedded SQLite broker; production needs Redis (redis://...)")
        if self.api_url and not self.worker_token:
            problems.append("KMINE_API_URL is set but KMINE_WORKER_TOKEN is not: create one with "
                            "`kmine token create NAME --role worker` on the API host")
        if problems:
            raise SettingsError("production mode refuses to start: " + "; ".join(problems))

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def encodings_dir(self) -> Path:
        return self.data_dir / "encodings"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin_token"

    def resolved_weights_dir(self) -> Path:
        """The weights folder: the engine reads ``KMINE_WEIGHTS_DIR`` (one reader of it)."""
        from kmine.weights import default_weights_dir

        return default_weights_dir().expanduser().resolve()

    def resolved_demo_dataset(self) -> Path | None:
        if self.demo_dataset is not None:
            return self.demo_dataset if self.demo_dataset.is_dir() else None
        project_root = Path(__file__).resolve().parents[2]
        for base in (Path.cwd(), project_root):
            candidate = base.parent / "shared" / "data" / "covid-qu-ex-sample"
            if candidate.is_dir():
                return candidate
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
