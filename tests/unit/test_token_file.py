"""The in-cluster client follows the projected token file: a rotated token is used from the next
request on, by every ApiClient, without waiting for the client's one-minute refresh."""

from kubernetes import client
from shipped_container import ProjectedToken

from aifactory_operator.kube.client import follow_token_file


def test_a_rotated_token_is_used_by_every_copy_from_the_next_request(tmp_path):
    volume = ProjectedToken(tmp_path / "token-volume")  # laid out as the kubelet projects it
    volume.write("first", b"ca", "ns")
    configuration = client.Configuration()
    follow_token_file(configuration, str(volume.folder / "token"))
    copy = configuration.__deepcopy__({})  # what each ApiClient gets
    assert configuration.get_api_key_with_prefix("BearerToken") == "bearer first"

    volume.write("second", b"ca", "ns")
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
