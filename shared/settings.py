"""Configuration: pydantic-settings, one class per concern, environment prefix ``CLIPSTREAM_``.

The two switches between the embedded default and production are also read under their
conventional names: ``KAFKA_BOOTSTRAP_SERVERS`` and ``QDRANT_URL``.

:class:`Settings` is the root: one field per section. The environment is read once, where a process
starts (the runner ``services/registry.py``, the CLI, devkit, benchmarks, evaluation and training
scripts), and the root, or the sections a function needs, is passed down from there: nothing in
``shared/`` or ``services/`` builds settings of its own (``tests/unit/test_layout.py`` checks it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.ownership import base_url

PREFIX = "CLIPSTREAM_"


def _config(section: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"{PREFIX}{section}", extra="ignore", populate_by_name=True,
                              use_attribute_docstrings=True)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class KafkaSettings(BaseSettings):
    model_config = _config("KAFKA_")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("CLIPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    """Kafka brokers (host:port, comma-separated): the embedded broker or Apache Kafka."""
    client_id: str = "clipstream"
    """Prefix of the Kafka client id; the service name is appended."""
    max_message_bytes: int = Field(1024 * 1024, ge=1024)
    """Largest event body a consumer accepts; larger ones are dead-lettered as oversized."""
    session_timeout_ms: int = Field(6000, ge=1000)
    """Consumer group session timeout; a dead consumer's partitions move after this long."""
    heartbeat_interval_ms: int = Field(1000, ge=100)
    """Consumer heartbeat interval (well under the session timeout)."""
    auto_offset_reset: str = "earliest"
    """Where a new consumer group starts: earliest (replay the topic) or latest."""
    fetch_max_wait_ms: int = Field(25, ge=1)
    """Longest a fetch waits for data (bounds end-to-end latency on brokers that do not wake early)."""
    max_poll_records: int = Field(500, ge=1)
    """Messages handled per batch; offsets are committed once per batch. The recommender's watch events take
    ``CLIPSTREAM_RECOMMENDER_MAX_POLL_RECORDS`` instead."""
    request_timeout_ms: int = Field(2000, ge=100)
    """Longest a producer request (publish, metadata) waits for the broker; consumers keep 40 s (a group join may wait longer)."""
    replication_factor: int = Field(1, ge=1)
    """Replicas of each topic the platform creates (3 in production; the embedded broker has one)."""


class QdrantSettings(BaseSettings):
    model_config = _config("QDRANT_")

    url: str | None = Field(None, validation_alias=AliasChoices("CLIPSTREAM_QDRANT_URL", "QDRANT_URL"))
    """Qdrant server URL; unset means the embedded engine (qdrant-edge) under data_dir."""
    api_key: SecretStr | None = None
    """API key for the Qdrant server, if it requires one."""
    data_dir: Path = Path("var/qdrant")
    """Folder for embedded shards (one per collection and process)."""
    timeout_s: float = 10.0
    """Request timeout against a Qdrant server."""


class ServiceSettings(BaseSettings):
    """Where a service serves /metrics, /health and /ready."""

    model_config = _config("SERVICE_")

    host: str = "127.0.0.1"
    """Address a consumer service serves /metrics, /health and /ready on."""
    port: int = Field(8001, ge=0, le=65535)
    """Port for /metrics, /health and /ready."""
    log_level: str = "info"
    """Log level: debug, info, warning, error."""
    blas_threads: int = Field(1, ge=0)
    """Threads numpy's BLAS may use in a service process (0: the library's own default, one per core). A service
    is one event loop, scaled out by processes and replicas, and its matrix products are small (a feed ranks a
    few hundred candidates); an idle BLAS worker thread spins between calls and takes a core from the broker and
    the other processes on the host."""


class GatewaySettings(BaseSettings):
    model_config = _config("GATEWAY_")

    host: str = "127.0.0.1"
    """Address the HTTP API listens on."""
    port: int = Field(8000, ge=0, le=65535)
    """Port of the HTTP API."""
    api_keys: Annotated[list[SecretStr], NoDecode] = [SecretStr("dev-key")]
    """API keys, comma-separated; the default is for the embedded demo only."""
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_batch: int = Field(1000, ge=1)
    """Most watch events in one batch request."""
    recommender_url: str = "http://127.0.0.1:8002"
    """Where the gateway forwards similar and search requests (any replica), and feed requests while no replica
    has claimed a partition on the memberships topic (a single recommender of an older build)."""
    recommender_group: str = "clipstream-recommender"
    """The recommender replicas' consumer group: its memberships topic says which replica serves which user."""
    owner_wait_s: float = Field(2.0, ge=0)
    """How long a feed request waits for its partition's owner during a rebalance (then 503 with Retry-After)."""
    stylization_url: str = "http://127.0.0.1:8003"
    """Where the gateway forwards stylization status and style list requests."""
    generation_url: str = "http://127.0.0.1:8004"
    """Where the gateway forwards generation status and topic list requests."""
    upstream_timeout_s: float = Field(5.0, gt=0)
    """Timeout for requests the gateway forwards to other services."""
    rate_limit_per_s: float = Field(50.0, ge=0)
    """Requests per second each API key may make on average (token bucket; 0: no limit); 429 beyond."""
    rate_limit_burst: int = Field(100, ge=1)
    """Requests an API key may make at once before its rate applies (the token bucket's size)."""
    creator_keys: dict[SecretStr, list[str]] = {}
    """Keys of creators, as JSON: {"key": ["creator id", ...]}: each may ask for the insights of those creators'
    videos only (403 for others; the keys in api_keys may ask about any)."""
    insights_min_users: int = Field(10, ge=1)
    """Privacy floor of creator insights: a figure computed from fewer users than this is withheld."""
    insights_creator_windows_days: list[Annotated[float, Field(gt=0, le=365)]] = []
    """Audience windows (window_days) a creator's key may ask insights for, as JSON (e.g. [1, 7, 28]); none: only
    the recommender's insights_window_days. Platform keys may ask any. Two close windows differ by the few users
    active between them, a count under the privacy floor: a creator gets only windows set here."""
    insights_creator_round_to: int = Field(10, ge=1)
    """User counts a creator's key reads (reach, by topic, audience) are rounded to the nearest multiple of this (1:
    exact; platform keys always read exact counts): two days' answers then rarely differ by the few users who
    joined or left the audience in between."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _keys_apart(self) -> GatewaySettings:
        """A key in both lists would silently be a platform key (exact counts, every route): refuse to start."""
        platform = {k.get_secret_value() for k in self.api_keys}
        if any(k.get_secret_value() in platform for k in self.creator_keys):
            raise ValueError("a key is in both CLIPSTREAM_GATEWAY_API_KEYS and CLIPSTREAM_GATEWAY_CREATOR_KEYS: a "
                             "creator's key must not also be a platform key")
        return self


class FetchSettings(BaseSettings):
    """Where media may come from: the gateway's check of a registered path or URL, and the encoder's and
    stylization's fetch of the media that events point at."""

    model_config = _config("FETCH_")

    media_root: Path = Field(
        Path("var/media"),
        validation_alias=AliasChoices("CLIPSTREAM_FETCH_MEDIA_ROOT", "CLIPSTREAM_GATEWAY_MEDIA_ROOT"),
    )
    """Folder that media paths are resolved against: uploads registered by path must lie under it (gateway), and events' paths are fetched from it."""
    allowed_url_hosts: Annotated[list[str], NoDecode] = Field(
        [], validation_alias=AliasChoices("CLIPSTREAM_FETCH_ALLOWED_URL_HOSTS", "CLIPSTREAM_GATEWAY_ALLOWED_URL_HOSTS"),
    )
    """Hosts exempt from the private-address check when registering or fetching URLs (for example an internal CDN)."""
    max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    """Largest media file fetched."""
    timeout_s: float = Field(30.0, gt=0)
    """Timeout for fetching one media file."""

    @field_validator("allowed_url_hosts", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)


class MediaSettings(BaseSettings):
    """Limits and sizes for decoding videos."""

    model_config = _config("MEDIA_")

    max_file_bytes: int = Field(500 * 1024 * 1024, ge=1)
    """Largest video file decoded."""
    max_duration_s: float = Field(600.0, gt=0)
    """Longest video accepted: the container's claim is checked before decoding, the frames' timestamps while decoding."""
    max_pixels: int = Field(3840 * 2160, ge=1)
    """Largest frame size accepted (width x height); 4K passes, 8K does not."""
    max_frames: int = Field(60 * 60 * 60, ge=1)
    """Decoding stops after this many frames whatever the metadata says."""
    open_timeout_s: float = Field(10.0, gt=0)
    """Timeout for opening a container."""
    keyframes: int = Field(8, ge=1, le=64)
    """Most keyframes per video fed to the model."""
    frame_size: int = Field(64, ge=16)
    """Side of the square keyframes (the encoder sets it from its backbone's manifest)."""
    frame_fit: Literal["letterbox", "crop"] = "letterbox"
    """How a frame becomes a square: letterboxed whole, or its centre cropped (the encoder sets it from its backbone)."""
    scene_threshold: float = Field(0.12, gt=0, lt=1)
    """Mean absolute difference (0-1) of small grey frames that counts as a scene cut."""
    thumbnail_width: int = Field(320, ge=16)
    """Width of the JPEG thumbnail."""


class ModelSettings(BaseSettings):
    """Where models live and how onnxruntime runs them."""

    model_config = _config("MODELS_")

    dir: Path = Path(__file__).resolve().parents[1] / "models"
    """Folder of the project's committed ONNX models and their manifest.json."""
    cache_dir: Path = Path("var/models")
    """Folder for models prepared at setup from packages (the text model); never committed."""
    provider: str = "auto"
    """auto: CUDA when onnxruntime has it and a GPU answers, else CPU; cpu: always CPU."""
    intra_op_threads: int = Field(0, ge=0)
    """onnxruntime threads per session (0: onnxruntime decides)."""
    verify_checksums: bool = True
    """Refuse a model file whose sha256 differs from its manifest."""


TOPIC_DESCRIPTIONS: dict[str, str] = {
    "sports": "sport, athletes, a ball game, exercise and fitness",
    "travel": "travel, a city street, landmarks, landscapes and vehicles",
    "food": "food, cooking, baking and drinks in a kitchen",
    "music": "music, a musician playing an instrument, a concert",
    "nature": "nature, animals, pets, birds, the sea and plants",
    "gaming": "video games, a computer screen and gameplay",
}
"""The platform's default topics (the demo's and the tests'), each with the short description a video's
concepts and words are matched against."""


class EncoderSettings(BaseSettings):
    model_config = _config("ENCODER_")

    collection: str = "videos"
    """Qdrant collection prefix: vectors go to <collection>-<model id>, search vectors to <collection>-<model id>-search."""
    topics: dict[str, str] = Field(default_factory=lambda: dict(TOPIC_DESCRIPTIONS))
    """The platform's topics as JSON, name to a short description; a video's topic is the nearest description (zero-shot)."""
    text_weight: float = Field(0.25, ge=0, le=1)
    """Share of the fused vector's similarity decided by title and tags."""
    concept_weight: float = Field(0.4, ge=0, le=1)
    """Share decided by the video's concepts (ImageNet classes mapped into the text space); the rest is visual features."""
    concepts_k: int = Field(20, ge=1, le=1000)
    """Classes a video's concept vector is built from (ConSE top-k)."""
    concepts_shown: int = Field(5, ge=0, le=50)
    """Concepts kept in the payload, the event and the API."""
    concept_min_score: float = Field(0.05, ge=0, le=1)
    """Least mean class probability for a concept to be shown."""
    duplicate_threshold: float = Field(0.9, gt=0, le=1)
    """Cosine similarity to the nearest existing video at which an upload is marked duplicate_of it."""
    artefacts_dir: Path = Path("var/artefacts")
    """Where thumbnails and extracted audio are written."""
    concurrency: int = Field(4, ge=1)
    """Uploads decoded at once (each in its own thread)."""
    max_batch: int = Field(16, ge=1)
    """Most videos whose keyframes go through the model in one call."""

    @field_validator("topics", mode="after")
    @classmethod
    def _topic_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name)]
        if bad or not value:
            raise ValueError(f"topic names must be lower-case words (a-z, 0-9, _ and -), at least one: {bad}")
        return value

    @model_validator(mode="after")
    def _weights(self) -> EncoderSettings:
        if self.text_weight + self.concept_weight > 1:
            raise ValueError("text_weight + concept_weight must be at most 1 (the rest is the visual share)")
        return self


class GenerationSettings(BaseSettings):
    model_config = _config("GENERATION_")

    host: str = "127.0.0.1"
    """Address of the generation service's HTTP API (request status, topics) and ops endpoints."""
    port: int = Field(8004, ge=0, le=65535)
    """Port of the generation service's HTTP API and ops endpoints."""
    output_dir: Path = Path("var/generated")
    """Where artefacts are written: <request_id>/ with covers, frames or a clip, and <request_id>.json."""
    max_pixels_per_request: int = Field(64 * 512 * 512, ge=1)
    """Most output pixels (count x size x size, or frames x size x size for a clip) one request may ask for."""
    batch: int = Field(64, ge=1, le=256)
    """Latents per generator call."""


class StylizationSettings(BaseSettings):
    model_config = _config("STYLIZATION_")

    host: str = "127.0.0.1"
    """Address of the stylization service's HTTP API (job status, styles) and ops endpoints."""
    port: int = Field(8003, ge=0, le=65535)
    """Port of the stylization service's HTTP API and ops endpoints."""
    output_dir: Path = Path("var/stylized")
    """Where stylized videos are written (one <request_id>.mp4 each, with a .json record)."""
    lut_dir: Path = Path(__file__).resolve().parents[1] / "services" / "stylization" / "luts"
    """Folder of .cube LUTs a request may name (names or paths inside it only)."""
    batch: int = Field(8, ge=1, le=64)
    """Frames per model call."""
    flicker_reduction: float = Field(0.6, ge=0, le=1)
    """Weight of the previous stylized frame, warped by optical flow, where the motion is trusted (0: off)."""
    max_duration_s: float = Field(120.0, gt=0)
    """Longest video accepted for stylization (by the container's claim and by the time decoded)."""
    crf: int = Field(20, ge=0, le=51)
    """H.264 quality of the output (lower is better)."""
    progress_every_s: float = Field(1.0, gt=0)
    """Least time between two progress events of one request."""


SCORER_WEIGHTS: dict[str, float] = {
    "long": 1.0, "short": 1.0, "negative": 0.8, "trending": 0.3, "popularity": 0.3, "covisit": 1.0,
    "covisit_last": 0.5, "fresh": 0.1, "young": 0.0, "covisit_recent": 0.0, "topic": 0.0, "sequential": 1.0,
    "session_knn": 2.0, "hot": 0.0,
}
"""The recommender's prior scorer weights, keyed by feature name (``services/recommender/core/features.py``
FEATURES; a test keeps the two in step)."""


class RecommenderSettings(BaseSettings):
    model_config = _config("RECOMMENDER_")

    state_dir: Path = Path("var/recommender")
    """SQLite files (one per partition) holding user state together with the offsets it reflects."""
    host: str = "127.0.0.1"
    """Address of the recommender's HTTP API (feeds, similar, search) and ops endpoints."""
    port: int = Field(8002, ge=0, le=65535)
    """Port of the recommender's HTTP API and ops endpoints."""
    long_half_life: float = Field(40.0, gt=0)
    """Events after which a signal's weight in the long-term vector has halved."""
    short_half_life: float = Field(4.0, gt=0)
    """Events after which a signal's weight in the session vector has halved."""
    session_gap_s: float = Field(1800.0, gt=0)
    """A pause this long (or a new session_id) starts a new session vector."""
    popularity_half_life_s: float = Field(30 * 86400.0, gt=0)
    """Half-life of the time-decayed popularity counts (trending)."""
    hot_half_life_s: float = Field(86400.0, gt=0)
    """Half-life of the short-term popularity kept beside them (hot: what is popular today)."""
    fresh_window_s: float = Field(24 * 3600.0, gt=0)
    """Uploads younger than this are candidates for exploration ("new")."""
    seen_limit: int = Field(2000, ge=10)
    """Most recent items remembered per user for the already-seen filter."""
    covisit_window: int = Field(10, ge=1)
    """A positive event co-visits with this many of the user's previous positive items."""
    scorer_weights: dict[str, float] = Field(default_factory=lambda: dict(SCORER_WEIGHTS))
    """Scorer weight of each ranking feature, as JSON; names left out keep their default, unknown names are
    refused. long, short: similarity to the long-term and session vectors; negative: to the negative vector
    (subtracted); trending, popularity, hot: decayed (hot: over about a day) and all-time popularity; covisit, covisit_last,
    covisit_recent: co-visitation votes from recent items, the last item, the last 3; fresh, young: new
    uploads, youth on a log scale; topic: share of recent positives in the candidate's topic; sequential: what
    users watched next after the last 3 positives (sequential rules); session_knn: votes of users whose recent
    positives overlap the user's (session-kNN)."""

    @field_validator("scorer_weights", mode="after")
    @classmethod
    def _known_features(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SCORER_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown scorer features {unknown}; known: {', '.join(SCORER_WEIGHTS)}")
        return {**SCORER_WEIGHTS, **value}
    learn_fraction: float = Field(0.05, ge=0, le=1)
    """Share of positive watch events the ranker learns from (0 keeps the weights above fixed)."""
    learn_rate: float = Field(0.1, gt=0)
    """Step size of the ranker's online pairwise logistic regression."""
    learn_l2: float = Field(1e-3, ge=0)
    """Pull of the learned weights towards the configured ones."""
    learn_negatives: int = Field(10, ge=1, le=100)
    """Videos the user did not pick, sampled per learning event."""
    learn_candidate_share: float = Field(1.0, ge=0, le=1)
    """Share of them drawn from the co-visitation, transitions and session-kNN candidates (the rest from the
    whole catalogue); above 0, the ranker learns only from positives those sources retrieved."""
    mmr_lambda: float = Field(0.8, ge=0, le=1)
    """MMR trade-off: 1 ranks by score only, lower values favour diversity."""
    creator_cap: int = Field(3, ge=1)
    """Most items from one creator in one feed."""
    content_vectors: bool = True
    """False: the catalogue's vectors say nothing about the videos (a replay of a log without item metadata):
    the long_term and session sources, the three vector features and MMR's diversity term are off."""
    candidates_per_source: int = Field(100, ge=1)
    """How many candidates each source contributes before filtering."""
    max_k: int = Field(100, ge=1)
    """Largest feed or similar-list size a request may ask for."""
    max_poll_records: int = Field(2000, ge=1)
    """Most watch events one consumer batch takes (the recommender's own; other services keep the Kafka
    setting's 500). Each batch has a fixed cost besides its events, so on a backlog batches of 500 drained
    4,900-7,300 events/s and batches of 2,000 drained 8,700-13,100 (measured while each batch still awaited its
    group commit); in steady traffic a batch holds what arrived since the last one."""
    flush_interval_s: float = Field(0.25, ge=0)
    """State and offsets are stored at most this often (a crash replays what was not stored)."""
    group_id: str = Field("clipstream-recommender", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Consumer group of the replicas; names their changelog (<group>.changelog) and memberships (<group>.members)."""
    advertised_url: str | None = None
    """The URL the gateway reaches this replica at (default http://host:port); set it when host is 0.0.0.0."""
    changelog: bool = True
    """Write each flush to the changelog topic too, so another replica (on another machine) can restore a partition."""
    snapshot_min_entries: int = Field(2000, ge=1)
    """A full snapshot of a partition goes to the changelog and the local file once the entries (a user, a
    user's step, a video's popularity, a neighbour pair) written since the last one exceed both this and the
    snapshot's own: a restore reads at most about twice a partition's state."""
    insights_top_k: int = Field(100, ge=1, le=1000)
    """Creator insights: a user is reached by a video that would be among their top-k nearest catalogue videos."""
    insights_window_days: float = Field(7.0, gt=0)
    """Creator insights: users active in this many days make up the audience a reach forecast counts."""
    insights_refresh_s: float = Field(5.0, ge=0)
    """How often users whose state changed get their reach point (vector and bar) refreshed in Qdrant (0: never)."""
    insights_refresh_batch: int = Field(200, ge=1)
    """Most users refreshed per round (each is one catalogue search): bounds the work taken from event handling."""

    @field_validator("advertised_url", mode="after")
    @classmethod
    def _advertised_url(cls, url: str | None) -> str | None:
        """Refused at start-up, not at the replica's first claim: an http(s) base URL (``shared.ownership``)."""
        return url and base_url(url)


class Settings(BaseModel):
    """Every section, read from the environment once at start-up and handed down (``create_app(settings)``)."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    stylization: StylizationSettings = Field(default_factory=StylizationSettings)
    recommender: RecommenderSettings = Field(default_factory=RecommenderSettings)

    def with_section(self, name: str, **changes: object) -> Settings:
        """A copy with fields of section ``name`` changed (for example a port given on the command line)."""
        return self.model_copy(update={name: getattr(self, name).model_copy(update=changes)})
