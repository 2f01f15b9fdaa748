from pathlib import Path

from shared.settings import FetchSettings, GatewaySettings, KafkaSettings, QdrantSettings


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
    assert s.allowed_url_hosts == ["cdn.internal"]
    assert FetchSettings().media_root == Path(tmp_path)


def test_embedded_is_the_default(monkeypatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("CLIPSTREAM_QDRANT_URL", raising=False)
    assert QdrantSettings().url is None
