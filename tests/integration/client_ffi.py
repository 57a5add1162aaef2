"""
client_ffi.py - libartemis-client (build/libartemis-client.so) from Python
through ctypes, for the integration tests (test_client_*.py).  It also shows
that the library works over a plain C FFI, as Python, Go or Rust callers
would use it.

The library is $ARTEMIS_CLIENT_LIB, else libartemis-client.so next to the
artemis binary under test.  Change callbacks run on the library's own
thread; ctypes takes the GIL for them.
"""

import ctypes
import os
import threading

from artemis_it import artemis_bin

OK = 0
E_INVAL, E_NOMEM, E_CONNECT, E_TIMEOUT, E_PROTO, E_HTTP, E_SERVER, E_NOTFOUND, E_STATE = \
    -1, -2, -3, -4, -5, -6, -7, -8, -9

OPT = {  # ARTEMIS_OPT_* of include/artemis/client.h
    "region": 1, "zone": 2, "token": 3,
    "connect_timeout_ms": 100, "request_timeout_ms": 101, "lease_ttl_ms": 102,
    "heartbeat_interval_ms": 103, "reload_interval_ms": 104, "nodes_refresh_ms": 105,
    "backoff_max_ms": 106, "websocket": 107, "unregister_on_close": 108,
    "max_instances": 109, "max_services": 110, "max_response_bytes": 111,
    "ws_message_bytes": 112,
}
STAT = ["registered", "heartbeats", "heartbeats_http", "heartbeat_failures", "reregisters",
        "pushes", "reloads", "node_failures", "ws_sessions", "cached_services", "nodes"]
FIELD = ["regionId", "zoneId", "groupId", "serviceId", "instanceId", "machineName", "ip",
         "protocol", "url", "healthCheckUrl", "status"]
OP_REGISTER, OP_HEARTBEAT, OP_UNREGISTER = 0, 1, 2


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("http_status", ctypes.c_int),
                ("server_code", ctypes.c_char * 32), ("message", ctypes.c_char * 256)]

    def __str__(self):
        return "%d %s" % (self.code, self.message.decode(errors="replace"))


CHANGE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


def lib_path():
    return os.environ.get("ARTEMIS_CLIENT_LIB") or os.path.join(
        os.path.dirname(artemis_bin()), "libartemis-client.so")


def _load():
    lib = ctypes.CDLL(lib_path())
    vp, cp, i, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    ep = ctypes.POINTER(Error)
    sig = {
        "artemis_options_new": (vp, []), "artemis_options_free": (None, [vp]),
        "artemis_options_add_url": (i, [vp, cp]),
        "artemis_options_set_str": (i, [vp, i, cp]),
        "artemis_options_set_int": (i, [vp, i, ctypes.c_long]),
        "artemis_client_new": (i, [vp, ctypes.POINTER(vp), ep]),
        "artemis_client_free": (None, [vp]),
        "artemis_client_stat": (ctypes.c_uint64, [vp, i]),
        "artemis_client_node": (i, [vp, cp, sz]),
        "artemis_instance_new": (i, [cp, cp, cp, ctypes.POINTER(vp)]),
        "artemis_instance_set": (i, [vp, i, cp]),
        "artemis_instance_set_port": (i, [vp, i]),
        "artemis_instance_set_meta": (i, [vp, cp, cp]),
        "artemis_instance_get": (cp, [vp, i]),
        "artemis_instance_free": (None, [vp]),
        "artemis_register": (i, [vp, vp, ep]),
        "artemis_unregister": (i, [vp, vp, ep]),
        "artemis_registry_send": (i, [vp, i, vp, ep]),
        "artemis_discover": (i, [vp, cp, ctypes.POINTER(vp), ep]),
        "artemis_lookup": (i, [vp, cp, ctypes.POINTER(vp), ep]),
        "artemis_service_release": (None, [vp]),
        "artemis_service_size": (sz, [vp]),
        "artemis_service_instance": (vp, [vp, sz]),
        "artemis_service_json": (cp, [vp]),
        "artemis_service_choose": (i, [vp, cp, ctypes.POINTER(vp)]),
        "artemis_choose": (i, [vp, cp, cp, ctypes.POINTER(vp), ep]),
        "artemis_subscribe": (i, [vp, cp, CHANGE_FN, vp, ctypes.POINTER(ctypes.c_uint64), ep]),
        "artemis_unsubscribe": (i, [vp, ctypes.c_uint64]),
        "artemis_change_type_name": (cp, [vp]),
        "artemis_change_json": (cp, [vp]),
        "artemis_change_service": (vp, [vp]),
        "artemis_call": (i, [vp, cp, cp, cp, cp, ctypes.POINTER(vp), ep]),
        "artemis_response_status": (i, [vp]),
        "artemis_response_body": (cp, [vp, ctypes.POINTER(sz)]),
        "artemis_response_node": (cp, [vp]),
        "artemis_response_free": (None, [vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _b(s):
    return None if s is None else s.encode()


class Instance:
    """An artemis_instance_t built from keyword fields (serviceId, instanceId,
    url, ip, port, zoneId, groupId, status, metadata)."""

    def __init__(self, serviceId, instanceId, url=None, port=None, metadata=None, **fields):
        L = lib()
        self.ptr = ctypes.c_void_p()
        rc = L.artemis_instance_new(_b(serviceId), _b(instanceId), _b(url),
                                    ctypes.byref(self.ptr))
        assert rc == OK, rc
        for name, value in fields.items():
            assert L.artemis_instance_set(self.ptr, FIELD.index(name), _b(value)) == OK, name
        if port is not None:
            assert L.artemis_instance_set_port(self.ptr, port) == OK
        for k, v in (metadata or {}).items():
            assert L.artemis_instance_set_meta(self.ptr, _b(k), _b(v)) == OK

    def free(self):
        if self.ptr:
            lib().artemis_instance_free(self.ptr)
            self.ptr = None


def instance_fields(ptr):
    L = lib()
    out = {}
    for k, name in enumerate(FIELD):
        v = L.artemis_instance_get(ptr, k)
        if v is not None:
            out[name] = v.decode()
    return out


class Client:
    """One artemis_client_t.  urls: "http://a:1,http://b:2"; options by name
    (OPT): region="us-east", heartbeat_interval_ms=200, ..."""

    def __init__(self, urls, **options):
        L = lib()
        o = L.artemis_options_new()
        try:
            assert L.artemis_options_add_url(o, _b(urls)) == OK, urls
            for name, value in options.items():
                if isinstance(value, str):
                    rc = L.artemis_options_set_str(o, OPT[name], _b(value))
                else:
                    rc = L.artemis_options_set_int(o, OPT[name], int(value))
                assert rc == OK, (name, value, rc)
            self.ptr = ctypes.c_void_p()
            err = Error()
            rc = L.artemis_client_new(o, ctypes.byref(self.ptr), ctypes.byref(err))
            assert rc == OK, str(err)
        finally:
            L.artemis_options_free(o)
        self._callbacks = {}

    def close(self):
        if self.ptr:
            lib().artemis_client_free(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stat(self, name):
        return lib().artemis_client_stat(self.ptr, STAT.index(name))

    def node(self):
        buf = ctypes.create_string_buffer(512)
        assert lib().artemis_client_node(self.ptr, buf, 512) == OK
        return buf.value.decode()

    def register(self, inst):
        err = Error()
        return lib().artemis_register(self.ptr, inst.ptr, ctypes.byref(err)), err

    def unregister(self, inst):
        err = Error()
        return lib().artemis_unregister(self.ptr, inst.ptr, ctypes.byref(err)), err

    def send(self, op, inst):
        err = Error()
        return lib().artemis_registry_send(self.ptr, op, inst.ptr, ctypes.byref(err)), err

    def _service(self, fn, service_id):
        L = lib()
        svc = ctypes.c_void_p()
        err = Error()
        rc = fn(self.ptr, _b(service_id), ctypes.byref(svc), ctypes.byref(err))
        if rc != OK:
            return rc, err, None
        ids = []
        for k in range(L.artemis_service_size(svc)):
            ids.append(instance_fields(L.artemis_service_instance(svc, k)))
        L.artemis_service_release(svc)
        return rc, err, ids

    def discover(self, service_id):
        """(rc, err, [instance fields]) from the cache."""
        return self._service(lib().artemis_discover, service_id)

    def lookup(self, service_id):
        return self._service(lib().artemis_lookup, service_id)

    def discover_ids(self, service_id):
        rc, err, insts = self.discover(service_id)
        assert rc == OK, str(err)
        return sorted(i["instanceId"] for i in insts)

    def choose(self, service_id, route=None):
        """The instanceId artemis_choose picks, or None with (rc, err)."""
        L = lib()
        inst = ctypes.c_void_p()
        err = Error()
        rc = L.artemis_choose(self.ptr, _b(service_id), _b(route), ctypes.byref(inst),
                              ctypes.byref(err))
        if rc != OK:
            return None, (rc, err)
        fields = instance_fields(inst)
        L.artemis_instance_free(inst)
        return fields["instanceId"], None

    def subscribe(self, service_id):
        """Subscribe; returns a list that receives (type, json) of each change."""
        L = lib()
        got = []
        lock = threading.Lock()

        def on_change(ch, arg):
            with lock:
                got.append((L.artemis_change_type_name(ch).decode(),
                            L.artemis_change_json(ch).decode()))

        fn = CHANGE_FN(on_change)
        sub = ctypes.c_uint64()
        err = Error()
        rc = L.artemis_subscribe(self.ptr, _b(service_id), fn, None, ctypes.byref(sub),
                                 ctypes.byref(err))
        assert rc == OK, str(err)
        self._callbacks[sub.value] = fn  # keep the thunk alive
        return got

    def call(self, method, path, body=None, token=None):
        """(rc, err, status, body, node)."""
        L = lib()
        res = ctypes.c_void_p()
        err = Error()
        rc = L.artemis_call(self.ptr, _b(method), _b(path), _b(body), _b(token),
                            ctypes.byref(res), ctypes.byref(err))
        if rc != OK:
            return rc, err, None, None, None
        n = ctypes.c_size_t()
        text = L.artemis_response_body(res, ctypes.byref(n))
        out = (rc, err, L.artemis_response_status(res), text[:n.value].decode(),
               L.artemis_response_node(res).decode())
        L.artemis_response_free(res)
        return out
