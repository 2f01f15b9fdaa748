# One image for every ClipStream service; docker-compose and Kubernetes pick the command.

# Stage 1: export the models that packages ship (the text model, the frame backbone) to ONNX; needs torch
# and the export code in training/, never in the runtime image.
FROM python:3.11-slim AS setup-models
WORKDIR /build
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
COPY training ./training
COPY models ./models
RUN pip install --no-cache-dir ".[train]" \
 && CLIPSTREAM_MODELS_DIR=/build/models CLIPSTREAM_MODELS_CACHE_DIR=/build/cache clipstream models prepare

# Stage 2: the runtime: serving code, the CLI and the ONNX files; no torch, no training checkpoints, no
# offline packages (training, evaluation, devkit: .dockerignore keeps them and the checkpoints out).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
RUN pip install . && useradd --create-home --uid 10001 clipstream && mkdir -p /data && chown clipstream /data
COPY models ./models
COPY --from=setup-models /build/cache /app/cache
USER clipstream
ENV CLIPSTREAM_MODELS_DIR=/app/models CLIPSTREAM_MODELS_CACHE_DIR=/app/cache \
    CLIPSTREAM_QDRANT_DATA_DIR=/data/qdrant CLIPSTREAM_GATEWAY_MEDIA_ROOT=/data/media \
    CLIPSTREAM_FETCH_MEDIA_ROOT=/data/media CLIPSTREAM_ENCODER_ARTEFACTS_DIR=/data/artefacts
ENTRYPOINT ["clipstream"]
CMD ["--help"]
