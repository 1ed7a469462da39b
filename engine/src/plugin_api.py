"""Inflow's processing engine, its Python half.

Plugins written for InfluxDB 3 run unchanged: they get the same
`influxdb3_local` object (logging, queries, writes, the cache), the
`LineBuilder` class as a builtin, and are called by the same entry points
(`process_writes`, `process_scheduled_call`, `process_request`). The Rust
half (engine/src/python.rs) loads this module once per process and calls
`invoke`; `host` is its object that logs, queries and writes for the call.
"""

import builtins
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import weakref


class InfluxDBError(Exception):
    """Base class of the errors LineBuilder raises."""


class InvalidMeasurementError(InfluxDBError):
    """The measurement name cannot be written."""


class InvalidKeyError(InfluxDBError):
    """A tag or field key cannot be written."""


class InvalidLineError(InfluxDBError):
    """The line cannot be built (no field)."""


def _escape(text, specials):
    out = []
    for ch in text:
        if ch in specials:
            out.append("\\")
        out.append(ch)
    return "".join(out)


class LineBuilder:
    """Builds one line of line protocol: a measurement, tags, typed fields
    and an optional timestamp in nanoseconds."""

    def __init__(self, measurement):
        if not isinstance(measurement, str) or not measurement:
            raise InvalidMeasurementError("measurement name must be a non-empty string")
        if " " in measurement:
            raise InvalidMeasurementError("Measurement name cannot contain spaces")
        self.measurement = measurement
        self.tags = {}
        self.fields = {}
        self._timestamp_ns = None

    @staticmethod
    def _check_key(key, what):
        if not isinstance(key, str) or not key:
            raise InvalidKeyError(f"{what} key cannot be empty")
        for ch, name in ((" ", "spaces"), (",", "commas"), ("=", "equals signs")):
            if ch in key:
                raise InvalidKeyError(f"{what} key '{key}' cannot contain {name}")

    def tag(self, key, value):
        self._check_key(key, "tag")
        self.tags[key] = str(value)
        return self

    def int64_field(self, key, value):
        self._check_key(key, "field")
        value = int(value)
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"int64 field '{key}' is out of range: {value}")
        self.fields[key] = f"{value}i"
        return self

    def uint64_field(self, key, value):
        self._check_key(key, "field")
        value = int(value)
        if value < 0:
            raise ValueError(f"uint64 field '{key}' cannot be negative")
        if value >= 2**64:
            raise ValueError(f"uint64 field '{key}' is out of range: {value}")
        self.fields[key] = f"{value}u"
        return self

    def float64_field(self, key, value):
        self._check_key(key, "field")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"float64 field '{key}' must be finite, not {value}")
        self.fields[key] = f"{int(value)}.0" if value.is_integer() else repr(value)
        return self

    def string_field(self, key, value):
        self._check_key(key, "field")
        self.fields[key] = '"' + _escape(str(value), '"\\') + '"'
        return self

    def bool_field(self, key, value):
        self._check_key(key, "field")
        self.fields[key] = "t" if value else "f"
        return self

    def time_ns(self, timestamp_ns):
        self._timestamp_ns = int(timestamp_ns)
        return self

    def build(self):
        line = _escape(self.measurement, ", ")
        for key, value in self.tags.items():
            line += "," + _escape(key, ",= \\") + "=" + _escape(value, ",= \\")
        if not self.fields:
            raise InvalidLineError(f"At least one field is required: {line}")
        line += " " + ",".join(
            _escape(key, ",= \\") + "=" + value for key, value in self.fields.items()
        )
        if self._timestamp_ns is not None:
            line += f" {self._timestamp_ns}"
        return line


# The cache: a namespace per trigger (or per dry-run cache name) and one
# shared by all, values kept until their ttl (seconds) passes.
_cache_lock = threading.Lock()
_caches = {}
_GLOBAL = ("global",)


class _Cache:
    def __init__(self, namespace):
        self._namespace = namespace

    def _store(self, use_global):
        key = _GLOBAL if use_global else self._namespace
        return _caches.setdefault(key, {})

    def put(self, key, value, ttl=None, use_global=False):
        if ttl is not None and ttl < 0:
            raise ValueError("ttl must not be negative")
        expires = None if ttl is None else time.monotonic() + float(ttl)
        with _cache_lock:
            self._store(use_global)[str(key)] = (value, expires)

    def get(self, key, default=None, use_global=False):
        with _cache_lock:
            store = self._store(use_global)
            entry = store.get(str(key))
            if entry is None:
                return default
            value, expires = entry
            if expires is not None and expires <= time.monotonic():
                del store[str(key)]
                return default
            return value

    def delete(self, key, use_global=False):
        with _cache_lock:
            return self._store(use_global).pop(str(key), None) is not None


def _text(args):
    return " ".join(str(a) for a in args)


def _line_of(line_builder):
    if isinstance(line_builder, str):
        return line_builder
    return line_builder.build()


# Each `influxdb3_local`'s host, database and cache, kept outside the
# object so that its attributes are exactly InfluxDB 3's.
_local_state = weakref.WeakKeyDictionary()


class _Local:
    """The `influxdb3_local` object a plugin gets."""

    __slots__ = ("__weakref__",)

    def __init__(self, host, db, namespace):
        _local_state[self] = (host, db, _Cache(namespace))

    def info(self, *args):
        _local_state[self][0].log("INFO", _text(args))

    def warn(self, *args):
        _local_state[self][0].log("WARN", _text(args))

    def error(self, *args):
        _local_state[self][0].log("ERROR", _text(args))

    def query(self, query, args=None, database=None):
        host, db, _ = _local_state[self]
        params = None if args is None else json.dumps(dict(args))
        return host.query(database or db, query, params)

    def write(self, line_builder):
        host, db, _ = _local_state[self]
        host.write(db, _line_of(line_builder))

    def write_to_db(self, db_name, line_builder):
        _local_state[self][0].write(db_name, _line_of(line_builder))

    def write_sync(self, line_builder, no_sync=False):
        host, db, _ = _local_state[self]
        host.write_sync(db, _line_of(line_builder), bool(no_sync))

    def write_sync_to_db(self, db_name, line_builder, no_sync=False):
        _local_state[self][0].write_sync(db_name, _line_of(line_builder), bool(no_sync))

    @property
    def cache(self):
        return _local_state[self][2]


# Loaded plugins: (namespace, path) -> (the files' newest mtime, module).
_loaded = {}
_load_lock = threading.Lock()

# Bytecode caches compare source times in whole seconds, so a plugin file
# replaced within a second of its last load would run stale; plugins are
# small, and the plugin directory stays free of __pycache__.
sys.dont_write_bytecode = True


def _mtime(path):
    """What says a plugin changed: its files' times and sizes (and, for a
    directory, which files there are)."""
    if not os.path.isdir(path):
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    stamp = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            if f.endswith(".py"):
                st = os.stat(os.path.join(root, f))
                stamp.append((os.path.join(root, f), st.st_mtime_ns, st.st_size))
    return tuple(sorted(stamp))


def _load(namespace, path):
    """The plugin at `path` as a module, loaded again when its files change.
    A directory is a package (its `__init__.py` the entry)."""
    with _load_lock:
        stamp = _mtime(path)
        key = (namespace, path)
        hit = _loaded.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        name = "inflow_plugin_" + str(abs(hash(key)))
        # A reload runs the package's modules afresh, not the ones imported
        # from the old version.
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        if os.path.isdir(path):
            init = os.path.join(path, "__init__.py")
            if not os.path.exists(init):
                raise ImportError(f"plugin directory {path} has no __init__.py")
            spec = importlib.util.spec_from_file_location(
                name, init, submodule_search_locations=[path]
            )
        else:
            spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load plugin {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _loaded[key] = (stamp, module)
        return module


def _response(result):
    """A request plugin's answer as (status, headers, body bytes): a string
    (text/html), a dict or list (JSON), bytes, a Flask-style response, or
    a tuple of one of those with a status and/or headers."""
    status, headers = 200, {}
    if hasattr(result, "status_code") and hasattr(result, "get_data"):
        body = result.get_data()
        return (
            int(result.status_code),
            {str(k): str(v) for k, v in dict(result.headers).items()},
            body if isinstance(body, bytes) else str(body).encode(),
        )
    if isinstance(result, tuple):
        if not 1 <= len(result) <= 3:
            raise TypeError("a request plugin's tuple is (body[, status][, headers])")
        body_part, rest = result[0], result[1:]
        for item in rest:
            if isinstance(item, dict):
                headers.update({str(k): str(v) for k, v in item.items()})
            elif isinstance(item, int):
                status = item
            else:
                raise TypeError(f"unexpected {type(item).__name__} in a response tuple")
        _, part_headers, body = _response(body_part)
        for k, v in part_headers.items():
            headers.setdefault(k, v)
        return status, headers, body
    if result is None:
        return 204, {}, b""
    if isinstance(result, (bytes, bytearray)):
        return status, {"Content-Type": "application/octet-stream"}, bytes(result)
    if isinstance(result, str):
        return status, {"Content-Type": "text/html"}, result.encode()
    if isinstance(result, (dict, list)):
        return status, {"Content-Type": "application/json"}, json.dumps(result).encode()
    if hasattr(result, "__iter__"):
        chunks = []
        for item in result:
            chunks.append(item if isinstance(item, bytes) else str(item).encode())
        return status, {"Content-Type": "text/html"}, b"".join(chunks)
    return status, {"Content-Type": "text/plain"}, str(result).encode()


def invoke(host, namespace, path, entry, db, args):
    """Calls `entry` of the plugin at `path` with `influxdb3_local` and
    `args`. Returns (True, result) or (False, traceback text): nothing a
    plugin raises, `SystemExit` included, leaves this function."""
    if _venv["path"] is not None and not _venv["added"]:
        # Another process sharing the environment may have made it since.
        add_site_packages(_venv["path"])
    try:
        module = _load(namespace, path)
        function = getattr(module, entry, None)
        if function is None:
            raise AttributeError(f"the plugin {os.path.basename(path)} has no function {entry}()")
        local = _Local(host, db, namespace)
        result = function(local, *args)
        if entry == "process_request":
            result = _response(result)
        return True, result
    except BaseException as e:  # noqa: BLE001 - a plugin must never take the server down
        tb = e.__traceback__
        # The plugin's frames only: the engine's own are noise to its author.
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        return False, "".join(traceback.format_exception(type(e), e, tb))


# The plugins' virtual environment, and whether its packages are on sys.path.
_venv = {"path": None, "added": False}


def add_site_packages(venv):
    """Makes the packages of the virtual environment at `venv` importable."""
    import site

    _venv["path"] = venv
    lib = os.path.join(venv, "lib")
    if not os.path.isdir(lib):
        return None
    for entry in sorted(os.listdir(lib)):
        candidate = os.path.join(lib, entry, "site-packages")
        if entry.startswith("python") and os.path.isdir(candidate):
            if candidate not in sys.path:
                site.addsitedir(candidate)
            importlib.invalidate_caches()
            _venv["added"] = True
            return candidate
    return None


builtins.LineBuilder = LineBuilder
