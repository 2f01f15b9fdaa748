import os

import pytest

from shared.safety import UnsafeSource, check_path, check_source, check_url, is_public_address


@pytest.fixture
def media(tmp_path):
    root = tmp_path / "media"
    (root / "uploads").mkdir(parents=True)
    (root / "uploads" / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("s")
    return root


def test_file_inside_root_is_accepted(media):
    src = check_source("uploads/a.mp4", media)
    assert src.kind == "file" and src.location == str(media / "uploads" / "a.mp4")


@pytest.mark.parametrize("path", ["../../etc/passwd", "../secret.txt", "/etc/passwd", "uploads/../../secret.txt"])
def test_paths_outside_root_are_refused(media, path):
    with pytest.raises(UnsafeSource, match="outside the media root"):
        check_path(path, media)


def test_symlink_escaping_root_is_refused(media, tmp_path):
    os.symlink(tmp_path / "secret.txt", media / "link.mp4")
    with pytest.raises(UnsafeSource, match="outside"):
        check_path("link.mp4", media)


def test_missing_file_and_directory_are_refused(media):
    with pytest.raises(UnsafeSource, match="not a file"):
        check_path("uploads/none.mp4", media)
    with pytest.raises(UnsafeSource, match="not a file"):
        check_path("uploads", media)
    with pytest.raises(UnsafeSource, match="NUL"):
        check_path("a\x00b", media)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x.mp4", "http://localhost:8080/x", "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
    "http://10.1.2.3/x", "http://192.168.0.10/x", "http://172.16.5.4/x", "http://224.0.0.1/x", "http://0.0.0.0/x",
    "http://[::ffff:127.0.0.1]/x", "http://[fe80::1]/x", "http://100.64.0.1/x",
])
def test_non_public_addresses_are_refused(url):
    with pytest.raises(UnsafeSource, match="non-public"):
        check_url(url)


@pytest.mark.parametrize("url,match", [
    ("file:///etc/passwd", "scheme"), ("ftp://example.com/a", "scheme"), ("gopher://x", "scheme"),
    ("http:///nohost", "no host"), ("http://user:pw@example.com/a", "credentials"),
])
def test_bad_urls_are_refused(url, match):
    with pytest.raises(UnsafeSource, match=match):
        check_url(url)


def test_public_address_is_accepted_and_allow_list_bypasses_the_check():
    assert check_url("https://93.184.215.14/v.mp4").kind == "url"
    assert check_url("http://127.0.0.1:9000/v.mp4", allowed_hosts=["127.0.0.1"]).kind == "url"


def test_a_name_resolving_to_a_private_address_is_refused():
    # a resolver is a plain function: here, a name that an attacker points at the metadata service
    with pytest.raises(UnsafeSource, match="169.254.169.254"):
        check_url("http://innocent.example/v.mp4", resolver=lambda host: ["93.184.215.14", "169.254.169.254"])


def test_public_address_classification():
    assert is_public_address("8.8.8.8")
    assert not is_public_address("127.0.0.2")
    assert not is_public_address("::ffff:10.0.0.1")
