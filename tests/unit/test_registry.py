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


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backend_has_the_protocols_signatures_and_facts(name):
    """Every method of the Protocol with the same parameters (names, kinds, defaults) on both backends, and the
    facts the core asks for instead of comparing names."""
    import inspect

    backend = get_backend(name)
    for method, declared in inspect.getmembers(Backend, inspect.isfunction):
        if method.startswith("_"):
            continue
        ours = inspect.signature(getattr(type(backend), method))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
            [(p.name, p.kind, p.default) for p in inspect.signature(declared).parameters.values()], method
    facts = {"launcher": str, "default_port": int, "native_checkpoint": str, "data_key": str}
    assert set(facts) <= set(Backend.__annotations__)
    for fact, kind in facts.items():
        assert isinstance(getattr(backend, fact), kind), fact
    from pathlib import Path

    assert (Path(__file__).resolve().parents[2] / "scripts" / backend.launcher).is_file()
    assert backend.native_checkpoint in ("ckpt", "hf") and backend.data_key in ("mindrecord", "npy")
    variable, count = backend.visible_devices()
    assert variable.endswith("VISIBLE_DEVICES") and count >= 0


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backends_trainer_and_session_have_the_protocols_signatures(name):
    """What the shared loop and decoder call (``StepTrainer``, ``Session`` in ``backends/base.py``) is what each
    backend's classes define: the same methods with the same parameters, and the attributes set."""
    import importlib
    import inspect

    from backends.base import Session, StepTrainer

    for protocol, path in ((StepTrainer, f"backends.{name}.train:Trainer"),
                           (Session, f"backends.{name}.session:Session")):
        module, _, attribute = path.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        methods = [m for m, _ in inspect.getmembers(protocol, inspect.isfunction) if not m.startswith("_")]
        assert methods, protocol
        for method in methods:
            ours = inspect.signature(getattr(cls, method))
            declared = inspect.signature(getattr(protocol, method))
            assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
                [(p.name, p.kind, p.default) for p in declared.parameters.values()], (path, method)
        source = inspect.getsource(cls)
        for field in getattr(protocol, "__annotations__", {}):
            assert f"self.{field} = " in source, (path, field)


@pytest.mark.parametrize("section", ["MindFormersSection", "TorchSection"])
def test_each_backend_config_section_answers_what_the_protocol_says(section):
    """The planner and trainers ask a config's backend section (``BackendSection`` in ``backends/base.py``); both
    sections have its attributes and its methods with the same parameters."""
    import inspect

    import mindcode.config
    from backends.base import BackendSection

    cls = getattr(mindcode.config, section)
    instance = cls()
    for name in BackendSection.__annotations__:
        assert hasattr(instance, name), (section, name)
    for method, declared in inspect.getmembers(BackendSection, inspect.isfunction):
        if method.startswith("_"):
            continue
        ours = inspect.signature(getattr(cls, method))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
            [(p.name, p.kind, p.default) for p in inspect.signature(declared).parameters.values()], (section, method)
