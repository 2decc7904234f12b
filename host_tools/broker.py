"""Where an MQTT broker is and how to reach it safely: the one settings object every MQTT tool uses.

    settings = broker_settings("mqtts://broker.lan", cafile="ca.crt", credentials="~/.config/squeezeedge/mqtt.toml")
    settings.url          # "mqtts://broker.lan:8883": never carries a password, safe to print
    mask("... mqtt://u:pw@h ...")   # every text a tool prints about a broker goes through this

URLs: ``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (TLS, 8883); ``tcp://`` and
``ssl://`` are the same. TLS checks the broker's certificate against ``cafile`` (default: the
system's CAs) and its host name; ``check_hostname=False`` is the one opt-out, and it is loud.

Credentials, first found wins: the URL's ``user:pass@`` (works, with a warning: `ps` and shell
history show it), a credentials file (``--credentials FILE``), the environment
(``SQUEEZEEDGE_MQTT_USERNAME``/``SQUEEZEEDGE_MQTT_PASSWORD``), the default file
``~/.config/squeezeedge/mqtt.toml`` if it exists, or a prompt (``ask_password``). A credentials
file holds ``username = "..."`` and ``password = "..."`` (TOML) and must not be readable by
group or others. The C emulator reads the same file format (``--config``).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .transport import TransportError

DEFAULT_BROKER_ENV = "SQUEEZEEDGE_BROKER"
USERNAME_ENV = "SQUEEZEEDGE_MQTT_USERNAME"
PASSWORD_ENV = "SQUEEZEEDGE_MQTT_PASSWORD"
PLAIN_PORT, TLS_PORT = 1883, 8883
URL_FORM = "mqtt://host[:port] or mqtts://host[:port]"
INSECURE_OPTION = "--tls-insecure-no-hostname-check"

# Every password a tool has seen, so that mask() can hide it wherever it shows up (an exception
# text from a library, a URL echoed back). Process-wide on purpose: masking must not depend on
# which object happens to be at hand when a message is printed.
_secrets: set[str] = set()


def remember_secret(secret: str | None) -> None:
    if secret:
        _secrets.add(secret)


def mask(text: str) -> str:
    """``text`` with URL passwords (``scheme://user:PASS@``) and every known password replaced by ``***``."""
    text = re.sub(r"(\b[a-z]+://[^\s/@:]*):[^\s/@]*@", r"\1:***@", str(text))
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class MqttError(TransportError):
    """One-line, actionable description of an MQTT problem; its text never shows a password."""

    def __init__(self, message: str):
        super().__init__(mask(message))


def default_credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "squeezeedge" / "mqtt.toml"


@dataclass
class BrokerSettings:
    host: str
    port: int = PLAIN_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    @property
    def url(self) -> str:
        """The URL without credentials (safe to print)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerSettings:
    """``mqtt[s]://[user:pass@]host[:port]`` (``tcp://``, ``ssl://`` or no scheme too; user/pass %-encoded)."""
    if not url:
        raise MqttError(f"empty broker URL; use {URL_FORM}")
    if "://" not in url:
        url = "mqtt://" + url
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise MqttError(f"{url}: bad broker URL ({e}); use {URL_FORM}") from None
    if u.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise MqttError(f"{u.scheme}://: not an MQTT broker URL (websockets are not supported); use {URL_FORM}")
    if not u.hostname:
        raise MqttError(f"{url}: no broker host; use {URL_FORM}")
    tls = u.scheme in ("mqtts", "ssl")
    settings = BrokerSettings(u.hostname, port or (TLS_PORT if tls else PLAIN_PORT),
                              unquote(u.username) if u.username is not None else None,
                              unquote(u.password) if u.password is not None else None, tls=tls)
    remember_secret(settings.password)
    return settings


def default_broker() -> str:
    return os.environ.get(DEFAULT_BROKER_ENV, "mqtt://127.0.0.1:1883")


# ---- credentials ----

def toml_string(value: str) -> str:
    """A TOML basic string, as the emulator's --config reader and read_credentials_file parse it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_credentials_file(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """(username, password) from a TOML file that only its owner can read."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise MqttError(f"{p}: cannot read the credentials file ({e.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MqttError(f"{p} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                        f"a password file must be private: run `chmod 600 {p}`")
    values = _parse_toml(text, p)
    unknown = set(values) - {"username", "password"}
    if unknown:
        raise MqttError(f"{p}: unknown key {sorted(unknown)[0]!r}; a credentials file holds username and password")
    username, password = values.get("username"), values.get("password")
    if password is not None and not username:
        raise MqttError(f"{p}: a password needs a username")
    remember_secret(password)
    return username, password


def _parse_toml(text: str, path: Path) -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: key = "value" lines, which is all a credentials file needs
        out = {}
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = (s.strip() for s in line.split("=", 1))
                out[k] = v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
        return out
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # the decoder's message may quote the offending line, which may be the password
        raise MqttError(f"{path}: not valid TOML; write username = \"...\" and password = \"...\" lines") from None
    if not all(isinstance(v, str) for v in values.values()):
        raise MqttError(f'{path}: values must be quoted strings: username = "...", password = "..."')
    return values


def credentials_from_env() -> tuple[str | None, str | None]:
    username, password = os.environ.get(USERNAME_ENV) or None, os.environ.get(PASSWORD_ENV) or None
    if password is not None and username is None:
        raise MqttError(f"${PASSWORD_ENV} is set but ${USERNAME_ENV} is not; set both")
    remember_secret(password)
    return username, password


def warn(message: str) -> None:
    print(f"warning: {mask(message)}", file=sys.stderr, flush=True)


def broker_settings(url: str | None = None, *, cafile: str | None = None, certfile: str | None = None,
                    keyfile: str | None = None, check_hostname: bool = True, credentials: str | None = None,
                    ask_password: bool = False, prompt=None) -> BrokerSettings:
    """Settings from a URL (default ``$SQUEEZEEDGE_BROKER`` or mqtt://127.0.0.1:1883), TLS options and
    the first credentials source found (see the module's doc). Raises MqttError with what to do."""
    s = parse_broker_url(url or default_broker())
    if cafile or certfile or keyfile or not check_hostname:
        if not s.tls:
            raise MqttError(f"{s.url}: TLS options need a TLS broker URL; use mqtts://{s.url.split('://', 1)[1]}")
    for name, path in (("--cafile", cafile), ("--certfile", certfile), ("--keyfile", keyfile)):
        if path and not os.path.isfile(path):
            raise MqttError(f"{name} {path}: no such file")
    if keyfile and not certfile:
        raise MqttError("--keyfile needs --certfile (the client certificate it belongs to)")
    s.cafile, s.certfile, s.keyfile, s.check_hostname = cafile, certfile, keyfile, check_hostname
    if not check_hostname:
        warn(f"{INSECURE_OPTION}: the broker's certificate is NOT checked against the host name {s.host!r}; "
             "any server holding a certificate from that CA can pose as your broker")
    if s.password is not None:
        warn("the broker URL carries a password, which `ps` and your shell history show to others; use "
             f"--credentials FILE, ${PASSWORD_ENV} or --ask-password instead")
    else:  # a URL may name the user and leave the password to a file or the environment
        username, password = _find_credentials(credentials)
        if s.username is None:
            s.username, s.password = username, password
        elif username == s.username:
            s.password = password
    if ask_password and s.password is None:
        ask = prompt or _getpass
        if s.username is None:
            s.username = ask("MQTT user name: ", echo=True)
        s.password = ask(f"MQTT password for {s.username} at {s.url}: ", echo=False)
        remember_secret(s.password)
    return s


def _find_credentials(credentials: str | None) -> tuple[str | None, str | None]:
    if credentials:
        return read_credentials_file(credentials)
    username, password = credentials_from_env()
    if username is not None:
        return username, password
    default = default_credentials_path()
    if default.exists():
        return read_credentials_file(default)
    return None, None


def _getpass(text: str, echo: bool) -> str:
    import getpass

    if echo:
        print(text, end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip()
    return getpass.getpass(text)


def resolve(broker: "str | BrokerSettings | None") -> BrokerSettings:
    """A settings object from what a caller holds: settings as they are, a URL string parsed
    (credentials from the URL, else the environment or the default file), None: the default broker."""
    if isinstance(broker, BrokerSettings):
        return broker
    s = parse_broker_url(broker or default_broker())
    if s.username is None:
        s.username, s.password = _find_credentials(None)
    return s


# ---- the command line ----

def broker_options(settings: BrokerSettings) -> str:
    """The options that reach this broker again, for hints a tool prints (never a password)."""
    opts = f"--broker {settings.url}"
    if settings.cafile:
        opts += f" --cafile {settings.cafile}"
    if settings.tls and not settings.check_hostname:
        opts += f" {INSECURE_OPTION}"
    return opts


def add_broker_arguments(parser, broker_help: str | None = None) -> None:
    """--broker and the TLS and credential options, the same for every command that talks MQTT."""
    parser.add_argument("--broker", metavar="URL", default=None, help=broker_help or (
        f"{URL_FORM} (TLS, default port 8883); default: ${DEFAULT_BROKER_ENV} or mqtt://127.0.0.1:1883. "
        "Keep passwords out of it: see --credentials"))
    g = parser.add_argument_group("TLS and credentials (see README, MQTT security)")
    g.add_argument("--cafile", metavar="FILE", help="PEM CA certificate(s) that signed the broker's certificate "
                                                    "(default with mqtts://: the system's CAs)")
    g.add_argument("--certfile", metavar="FILE", help="PEM client certificate, for brokers that require one")
    g.add_argument("--keyfile", metavar="FILE", help="PEM private key of --certfile (if not inside it)")
    g.add_argument(INSECURE_OPTION, dest="tls_insecure_no_hostname_check", action="store_true",
                   help="do not check that the broker's certificate names the host you connect to (it is still "
                        "checked against --cafile). Unsafe: only for a broker reached by an address its "
                        "certificate does not list, on a network you trust")
    g.add_argument("--credentials", metavar="FILE",
                   help='TOML file with username = "..." and password = "..." (chmod 600); default: '
                        f"${USERNAME_ENV}/${PASSWORD_ENV}, else ~/.config/squeezeedge/mqtt.toml if it exists")
    g.add_argument("--ask-password", action="store_true", help="prompt for the password (and the user name if "
                                                               "no other source gives one)")


def settings_from_args(args, url: str | None = None) -> BrokerSettings:
    """BrokerSettings from the options add_broker_arguments added (``url`` overrides --broker)."""
    return broker_settings(url or getattr(args, "broker", None), cafile=getattr(args, "cafile", None),
                           certfile=getattr(args, "certfile", None), keyfile=getattr(args, "keyfile", None),
                           check_hostname=not getattr(args, "tls_insecure_no_hostname_check", False),
                           credentials=getattr(args, "credentials", None),
                           ask_password=getattr(args, "ask_password", False))
