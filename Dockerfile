# kmine server / worker image.
#   CPU (default):  docker build -t kmine .
#   CUDA:           docker build -t kmine:cuda --build-arg BASE=pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime .
# The pinned torch in pyproject.toml is installed on top of the base; with a CUDA base, pass
# TORCH_INDEX to pick the matching wheel index (e.g. the cu128 one) if the default lacks CUDA builds.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_INDEX=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KMINE_DATA_DIR=/data \
    KMINE_WEIGHTS_DIR=/weights

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY kmine ./kmine
COPY server ./server
COPY worker ./worker
COPY migrations ./migrations
COPY configs ./configs
RUN if [ -n "$TORCH_INDEX" ]; then pip install --extra-index-url "$TORCH_INDEX" -e .; else pip install -e .; fi \
    && useradd --create-home --uid 1000 kmine && mkdir -p /data /weights && chown kmine /data

USER kmine
VOLUME ["/data", "/weights"]
EXPOSE 8000
# The README's commands: `kmine serve` (API; embedded mode also starts a local worker) and `kmine worker`.
CMD ["kmine", "serve", "--host", "0.0.0.0", "--port", "8000"]
