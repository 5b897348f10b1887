import pytest

from backends import BACKENDS, Backend, get_backend
from mindcode.errors import MindcodeError


def test_unknown_backend_lists_valid_names():
    with pytest.raises(MindcodeError, match=r"unknown backend 'cuda'; valid: ascend, gpu"):
        get_backend("cuda")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backends_implement_the_protocol(name):
    backend = get_backend(name)
    assert backend.name == name
    methods = {"info", "build_model", "forward", "loss", "init_distributed", "write_run_config", "session", "trainer", "save_checkpoint",
               "load_checkpoint"}
    for method in methods:
        assert callable(getattr(backend, method)), method
    assert set(Backend.__dict__) >= methods
    info = backend.info()
    assert set(info) == {"available", "reason", "versions", "device", "device_count"}
    assert info["available"] is True, info["reason"]  # the test environment installs both
