"""The in-cluster client follows the projected token file: a rotated token is used from the next
request on, by every ApiClient, without waiting for the client's one-minute refresh."""

import os

from kubernetes import client

from aifactory_operator.kube.client import follow_token_file


def rotate(folder, name: str, token: str) -> None:
    """As the kubelet does: a new version folder, then one rename of the ..data link."""
    version = folder / name
    version.mkdir()
    (version / "token").write_text(token)
    (folder / "..data_tmp").symlink_to(name)
    os.replace(folder / "..data_tmp", folder / "..data")


def test_a_rotated_token_is_used_by_every_copy_from_the_next_request(tmp_path):
    rotate(tmp_path, "..v1", "first")
    (tmp_path / "token").symlink_to("..data/token")
    configuration = client.Configuration()
    follow_token_file(configuration, str(tmp_path / "token"))
    copy = configuration.__deepcopy__({})  # what each ApiClient gets
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer first"

    rotate(tmp_path, "..v2", "second")
    assert copy.get_api_key_with_prefix("BearerToken") == "bearer second"
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer second"


def test_a_missing_or_empty_token_file_keeps_the_last_token(tmp_path):
    (tmp_path / "token").write_text("kept")
    configuration = client.Configuration()
    follow_token_file(configuration, str(tmp_path / "token"))
    (tmp_path / "token").write_text("")
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer kept"
    (tmp_path / "token").unlink()
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer kept"
