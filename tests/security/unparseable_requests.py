#!/usr/bin/python3
"""Requests that do not parse, sent with the network's operator certificate
to every unary and server-streaming method of every qnet service
(Node, HardwarePlane, KeyManagement) on every daemon: each must get
INVALID_ARGUMENT naming the method and the message it expects (gRPC's own
typed handlers answered UNIMPLEMENTED with no message), and each daemon
must then still answer GetStatus. Debian's python3-grpcio only; the bytes
are hand-made. Prints one line per check and exits 1 if any check failed.

usage: unparseable_requests.py PKI_DIR NODE=ADDRESS...
"""
import sys

import grpc

pki = sys.argv[1]
addresses = dict(arg.split("=", 1) for arg in sys.argv[2:])
failures = []


def read(path):
    with open(path, "rb") as f:
        return f.read()


operator = grpc.ssl_channel_credentials(root_certificates=read(f"{pki}/ca.crt"),
                                        private_key=read(f"{pki}/operator-operator.key"),
                                        certificate_chain=read(f"{pki}/operator-operator.crt"))


def channel(node):
    return grpc.secure_channel(addresses[node], operator,
                               options=[("grpc.ssl_target_name_override", node)])


def call(ch, method, streaming, request):
    try:
        if streaming:
            for _ in ch.unary_stream(method, request_serializer=None, response_deserializer=None)(request, timeout=10):
                pass
            return grpc.StatusCode.OK, ""
        ch.unary_unary(method, request_serializer=None, response_deserializer=None)(request, timeout=10)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def expect(what, got, code, text):
    ok = got[0] == code and text in str(got[1])
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {got[0].name} {str(got[1])[:200]!r}")
    if not ok:
        failures.append(what)


# (service, method, server-streaming, request message)
METHODS = [
    ("Node", "GetStatus", False, "GetStatusRequest"),
    ("Node", "Entangle", True, "EntangleRequest"),
    ("Node", "GetOutcomes", False, "GetOutcomesRequest"),
    ("Node", "MeasureQubit", False, "MeasureQubitRequest"),
    ("Node", "GetRoutes", False, "GetRoutesRequest"),
    ("Node", "Teleport", True, "TeleportRequest"),
    ("Node", "Eavesdrop", False, "EavesdropRequest"),
    ("Node", "Qkd", True, "QkdRequest"),
    ("Node", "GetKey", False, "GetKeyRequest"),
    ("Node", "GetKeyPools", False, "GetKeyPoolsRequest"),
    ("HardwarePlane", "MoveGroup", False, "MoveGroupRequest"),
    ("HardwarePlane", "DiscardQubit", False, "DiscardQubitRequest"),
    ("HardwarePlane", "HandOver", False, "HandOverRequest"),
    ("KeyManagement", "CommitBlock", False, "CommitBlockRequest"),
    ("KeyManagement", "ReserveKeys", False, "ReserveKeysRequest"),
]
# A field tag whose varint never ends; a length that runs past the end; a
# group end tag with no group.
GARBAGE = [b"\xff\xff\xff\xff\xff", b"\x0a\x7f" + b"x" * 5, b"\x0c"]

for node in addresses:
    ch = channel(node)
    # A node without a key manager (no SAE there) has no KeyManagement
    # service: even a valid request is UNIMPLEMENTED there.
    has_kme = call(ch, "/qnet.v1.KeyManagement/ReserveKeys", False, b"")[0] != grpc.StatusCode.UNIMPLEMENTED
    for service, method, streaming, message in METHODS:
        if service == "KeyManagement" and not has_kme:
            print(f"skip {node} {service}.{method}: no key manager at {node}")
            continue
        for i, garbage in enumerate(GARBAGE):
            expect(f"{node} {service}.{method} garbage {i}",
                   call(ch, f"/qnet.v1.{service}/{method}", streaming, garbage),
                   grpc.StatusCode.INVALID_ARGUMENT, f"{method} request ({len(garbage)} byte{'s' if len(garbage) != 1 else ''}) does not parse as "
                                                     f"qnet.v1.{message}")
    # A string field that is not UTF-8 (proto3 strings must be): GetKey's key id.
    expect(f"{node} Node.GetKey with a key id that is not UTF-8",
           call(ch, "/qnet.v1.Node/GetKey", False, b"\x0a\x02\xff\xfe"),
           grpc.StatusCode.INVALID_ARGUMENT, "does not parse as qnet.v1.GetKeyRequest")
    # ...and the daemon serves on.
    expect(f"{node} still answers GetStatus", call(ch, "/qnet.v1.Node/GetStatus", False, b""), grpc.StatusCode.OK, "")

print(f"{len(failures)} checks failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
