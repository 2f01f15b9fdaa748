from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import FetchSettings, GatewaySettings, KafkaSettings, QdrantSettings, RecommenderSettings


def test_conventional_names_switch_to_production(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    assert KafkaSettings().bootstrap_servers == "kafka:9092"
    assert QdrantSettings().url == "http://qdrant:6333"


def test_prefixed_names_win(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("CLIPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "other:9092")
    assert KafkaSettings().bootstrap_servers == "other:9092"


def test_lists_from_comma_separated_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_API_KEYS", "k1, k2")
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_MEDIA_ROOT", str(tmp_path))
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_ALLOWED_URL_HOSTS", "cdn.internal")
    s = GatewaySettings()
    assert [k.get_secret_value() for k in s.api_keys] == ["k1", "k2"]
    # one media root and one list of allowed hosts (FetchSettings), read under the gateway's names too
    assert FetchSettings().allowed_url_hosts == ["cdn.internal"]
    assert FetchSettings().media_root == Path(tmp_path)
    monkeypatch.setenv("CLIPSTREAM_FETCH_ALLOWED_URL_HOSTS", "media.internal,cdn.internal")
    assert FetchSettings().allowed_url_hosts == ["media.internal", "cdn.internal"]


def test_the_root_holds_every_section(monkeypatch):
    from shared.config_catalog import SETTINGS_CLASSES
    from shared.settings import Settings

    monkeypatch.setenv("CLIPSTREAM_RECOMMENDER_PORT", "9102")
    root = Settings()
    assert {type(section) for section in dict(root).values()} == set(SETTINGS_CLASSES)
    assert root.recommender.port == 9102
    moved = root.with_section("recommender", port=9200)
    assert (moved.recommender.port, root.recommender.port, moved.kafka) == (9200, 9102, root.kafka)


def test_embedded_is_the_default(monkeypatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("CLIPSTREAM_QDRANT_URL", raising=False)
    assert QdrantSettings().url is None


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://replica:8003", "must be http:// or https:// with a host"),
    ("http://user:secret@replica:8003", "no credentials, query or fragment"),
    ("http://replica:port", "not a URL"),
])
def test_a_replica_url_the_gateway_could_not_use_is_refused_at_start_up(monkeypatch, url, why):
    monkeypatch.setenv("CLIPSTREAM_RECOMMENDER_ADVERTISED_URL", url)
    with pytest.raises(ValidationError, match=why):
        RecommenderSettings()
    monkeypatch.setenv("CLIPSTREAM_RECOMMENDER_ADVERTISED_URL", "http://recommender-0.recommender:8003")
    assert RecommenderSettings().advertised_url == "http://recommender-0.recommender:8003"


def test_a_key_cannot_be_both_a_platform_key_and_a_creators(monkeypatch):
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_API_KEYS", "platform-1,shared-key")
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_CREATOR_KEYS", '{"shared-key": ["creator-1"]}')
    with pytest.raises(ValidationError, match="both"):
        GatewaySettings()
    monkeypatch.setenv("CLIPSTREAM_GATEWAY_CREATOR_KEYS", '{"creator-key": ["creator-1"]}')
    assert [k.get_secret_value() for k in GatewaySettings().creator_keys] == ["creator-key"]
