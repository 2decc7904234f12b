"""A locked-down mosquitto for a home: ``squeezeedge mqtt acl --device ID ... --controller NAME -o DIR``.

Writes into DIR:

    passwd              mosquitto password file (PBKDF2-SHA512, mosquitto 2's ``$7$`` format)
    acl                 one ``user`` block per device and one for the controller
    mosquitto.conf      a snippet to include: no anonymous clients, these two files
    credentials/NAME.toml   each user's name and password (chmod 600), for --credentials / --config

Each device may read only its own cmd topic and write only its own result, status and
discovery topics; only the controller (Home Assistant, the bridge host, `squeezeedge mqtt send`)
may publish requests, and so the home's names (sent as requests too). Nobody else can do
anything. The topics are ``mqtt.topics``, i.e. ``mqtt_topics`` — the one definition the tools
and the C devices (through its generated header) share.

Re-running keeps the passwords already in ``credentials/`` (adding a device does not lock out the
others).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .broker import MqttError, read_credentials_file, toml_string
from .mqtt import check_device, topics

# mosquitto 2.0's mosquitto_passwd: "$7$" = PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The password file entry mosquitto 2 reads (what ``mosquitto_passwd`` writes), without a
    subprocess that would carry the password in its argv."""
    salt = salt or secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def device_rules(device: str) -> list[str]:
    t = topics(device)
    return [f"topic read {t['cmd']}", f"topic write {t['result']}", f"topic write {t['status']}",
            f"topic write {t['discovery']}"]


def controller_rules(devices: list[str]) -> list[str]:
    every = topics("+", allow_wildcard=True)  # `mqtt listen --device +` subscribes to these
    # Home Assistant subscribes to its whole discovery prefix and announces itself on PREFIX/status
    discovery_prefix = topics(devices[0])["discovery"].split("/", 1)[0]
    rules = [f"topic read {every['result']}", f"topic read {every['status']}",
             f"topic read {discovery_prefix}/#", f"topic write {discovery_prefix}/status"]
    rules += [f"topic write {topics(d)['cmd']}" for d in devices]
    return rules


def acl_text(devices: list[str], controller: str) -> str:
    lines = ["# SqueezeEdge ACL, written by `squeezeedge mqtt acl`: each device only its own topics,",
             "# only the controller sends requests (commands and names). Clients not listed: nothing.", ""]
    for d in devices:
        lines += [f"# device {d}", f"user {d}", *device_rules(d), ""]
    lines += ["# the controller (Home Assistant, squeezeedge mqtt send/names push)", f"user {controller}",
              *controller_rules(devices), ""]
    return "\n".join(lines)


def conf_text(out: Path) -> str:
    return (f"# SqueezeEdge: include in mosquitto.conf (or pass with -c after adding a listener)\n"
            f"allow_anonymous false\n"
            f"password_file {out / 'passwd'}\nacl_file {out / 'acl'}\n"
            "# TLS (recommended): a listener on 8883 with the broker's certificate\n"
            "# listener 8883\n# cafile /etc/mosquitto/ca_certificates/ca.crt\n"
            "# certfile /etc/mosquitto/certs/broker.crt\n# keyfile /etc/mosquitto/certs/broker.key\n")


@dataclass
class AclFiles:
    directory: Path
    users: list[str]

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    def credentials(self, user: str) -> Path:
        return self.directory / "credentials" / f"{user}.toml"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode under O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def write_acl(out: str | os.PathLike, devices: list[str], controller: str) -> AclFiles:
    """Write passwd, acl, mosquitto.conf and one credentials file per user into ``out``."""
    devices = [check_device(d) for d in devices]
    check_device(controller)
    users = [*devices, controller]
    if not devices:
        raise MqttError("name at least one device: --device ID")
    if len(set(users)) != len(users):
        raise MqttError("each device id and the controller name must be different: they are the broker user names")
    out = Path(out).resolve()
    (out / "credentials").mkdir(parents=True, exist_ok=True)
    files = AclFiles(out, users)
    entries = []
    for user in users:
        path = files.credentials(user)
        password = read_credentials_file(path)[1] if path.exists() else None
        if not password:
            password = secrets.token_urlsafe(24)
            _write_private(path, f"username = {toml_string(user)}\npassword = {toml_string(password)}\n")
        entries.append(f"{user}:{password_hash(password)}")
    # readable by the broker's own user (mosquitto drops root); holds only salted hashes
    (out / "passwd").write_text("\n".join(entries) + "\n", encoding="utf-8")
    (out / "acl").write_text(acl_text(devices, controller), encoding="utf-8")
    files.conf.write_text(conf_text(out), encoding="utf-8")
    return files
