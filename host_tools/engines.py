"""Classify engines by name: every place a sentence can be understood, behind one interface
(``.name``, ``.classify(data) -> Answer``, ``.close()``).

``reference`` and ``c`` run in this process; ``emulator`` starts the firmware's host emulator;
``device`` talks to whatever answers at a serial port or on a broker; ``micropython`` imports the
native module in MicroPython. The engines that start something stop it again on ``close()``.
"""

from __future__ import annotations

import uuid

from .broker import BrokerSettings, MqttError
from .transport import DEFAULT_TIMEOUT, DeviceEngine, TransportError, open_transport

ENGINES = ("reference", "c", "emulator", "device", "micropython")


def open_device_engine(kind: str, model=None, port: str | None = None, sanitize: bool = False,
                       timeout: float = DEFAULT_TIMEOUT) -> DeviceEngine:
    """``kind="emulator"``: build and start a host emulator for ``model`` (IntModel, .semodel path
    or package dir; default the shipped model) on a free TCP port and connect to it.
    ``kind="device"``: connect to whatever answers at ``port`` (a URL pyserial opens)."""
    if kind == "device":
        if not port:
            raise TransportError("--engine device needs --port (e.g. /dev/ttyACM0 or socket://127.0.0.1:5555)")
        t = open_transport(port)
        t.resync()
        return DeviceEngine(t, "device", timeout=timeout)
    if kind == "emulator":
        from .emulator import default_model_path, start_emulator

        emu = start_emulator(model if model is not None else default_model_path(), "tcp:0", sanitize=sanitize)
        try:
            t = open_transport(emu.url)
        except TransportError:
            emu.stop()
            raise
        return DeviceEngine(t, "emulator", emulator=emu, timeout=timeout)
    raise ValueError(f"unknown device engine {kind!r}: use emulator or device")


def open_mqtt_engine(broker: "str | BrokerSettings | None", device: str | None, model=None,
                     timeout: float = DEFAULT_TIMEOUT):
    """An engine answered by ``device`` through ``broker``. With ``broker=None``: start a local
    amqtt broker and an MQTT host emulator for ``model`` (default the shipped model); both stop
    with ``close()``."""
    from .mqtt import MqttEngine, MqttTransport, start_local_broker

    if broker is not None:
        if not device:
            raise MqttError("--broker needs --device ID (the device's id on the broker)")
        return MqttEngine(MqttTransport(broker, device), "device", timeout=timeout)
    from .emulator import start_mqtt_emulator

    local = start_local_broker()
    emu = None
    try:
        device = device or f"emu-{uuid.uuid4().hex[:8]}"
        emu = start_mqtt_emulator(model, local.url, device)
        return MqttEngine(MqttTransport(local.url, device), "emulator", emulator=emu, broker=local, timeout=timeout)
    except BaseException:
        if emu is not None:
            emu.stop()
        local.stop()
        raise


def open_engine(name: str, model=None, *, port: str | None = None, broker: "str | BrokerSettings | None" = None,
                device: str | None = None, names=None, arch: str | None = None, progress=None):
    """The engine called ``name`` (one of ENGINES). ``model``: an IntModel for the host engines,
    else also a path (default: the shipped model). ``names`` (HomeNames) are kept by the host
    engines and sent to a device or emulator before the engine is returned."""
    engine = _open(name, model, port, broker, device, names, arch, progress)
    if names and hasattr(engine, "transport"):
        from .names import push_names

        try:
            push_names(engine.transport, names)
        except BaseException:
            engine.close()
            raise
    return engine


def _open(name, model, port, broker, device, names, arch, progress):
    if name in ("reference", "c", "micropython"):
        model = _int_model(model)
    if name == "reference":
        from .models.engine import ReferenceEngine

        return ReferenceEngine(model, names)
    if name == "c":
        from .compiler.host_engine import CEngine

        return CEngine(model, names=names)
    if name == "device" and broker:
        return open_mqtt_engine(broker, device)
    if name in ("emulator", "device"):
        return open_device_engine(name, model=model, port=port)
    if name == "micropython":
        from .micropython.engine import MicroPythonBoardEngine, MicroPythonEngine

        if arch in (None, "x64"):
            return MicroPythonEngine(model, names, progress=progress)
        return MicroPythonBoardEngine(model, arch, names, progress=progress)
    raise ValueError(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")


def _int_model(model):
    from .models.engine import DEFAULT_MODEL
    from .models.model_file import IntModel

    if model is None or not isinstance(model, IntModel):
        return IntModel.load(model or DEFAULT_MODEL)
    return model
