# One image for every ClipStream service; docker-compose and Kubernetes pick the command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install . && useradd --create-home --uid 10001 clipstream && mkdir -p /data && chown clipstream /data
USER clipstream
ENV CLIPSTREAM_QDRANT_DATA_DIR=/data/qdrant CLIPSTREAM_GATEWAY_MEDIA_ROOT=/data/media
ENTRYPOINT ["clipstream"]
CMD ["--help"]
