#!/usr/bin/python3
"""A hostile local process against a TLS network started by `qnetctl up`:
plaintext, a certificate from another CA, node certificates claiming other
names, an app certificate reaching beyond its node. Uses Debian's
python3-grpcio only (no generated code: requests are hand-encoded
protobuf). Prints one line per check and exits 1 if any check failed.

usage: hostile_client.py PKI_DIR FOREIGN_PKI_DIR NETWORK NODE=ADDRESS...
"""
import sys
import time

import grpc

pki, foreign, network = sys.argv[1], sys.argv[2], sys.argv[3]
addresses = dict(arg.split("=", 1) for arg in sys.argv[4:])
failures = []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def creds(directory, stem):
    return grpc.ssl_channel_credentials(
        root_certificates=read(f"{directory}/ca.crt"),
        private_key=read(f"{directory}/{stem}.key"),
        certificate_chain=read(f"{directory}/{stem}.crt"))


def channel(node, credentials=None, target=None):
    if credentials is None:
        return grpc.insecure_channel(addresses[node])
    return grpc.secure_channel(addresses[node], credentials,
                               options=[("grpc.ssl_target_name_override", target or node)])


def field(number, payload):  # a length-delimited protobuf field
    if isinstance(payload, str):
        payload = payload.encode()
    return bytes([number << 3 | 2, len(payload)]) + payload


def varint_field(number, value):
    return bytes([number << 3, value])


def unary(ch, method, request=b""):
    call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        return grpc.StatusCode.OK, call(request, timeout=5)
    except grpc.RpcError as e:
        return e.code(), e.details()


def server_stream(ch, method, request=b""):
    call = ch.unary_stream(method, request_serializer=None, response_deserializer=None)
    try:
        for _ in call(request, timeout=5):
            pass
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def peer_stream(ch, hello_node):
    hello = field(1, field(1, hello_node) + field(2, network) + varint_field(3, 1))
    call = ch.stream_stream("/qnet.v1.Peer/Exchange", request_serializer=None, response_deserializer=None)

    def frames():  # keeps its side open: a half-closed stream is just closed
        yield hello
        time.sleep(4)

    try:
        for _ in call(frames(), timeout=5):
            return grpc.StatusCode.OK, "accepted (got a frame back)"
        return grpc.StatusCode.OK, "closed without status"
    except grpc.RpcError as e:
        return e.code(), e.details()


def expect(what, got, codes, text=None):
    code, detail = got
    ok = code in codes and (text is None or text in str(detail))
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {code.name} {str(detail)[:160]!r}")
    if not ok:
        failures.append(what)


EVERY_PORT = [
    ("Node.GetStatus", lambda ch: unary(ch, "/qnet.v1.Node/GetStatus")),
    ("Node.GetKey", lambda ch: unary(ch, "/qnet.v1.Node/GetKey", field(1, "1"))),
    ("Peer.Exchange", lambda ch: peer_stream(ch, "alice")),
    ("HardwarePlane.MoveGroup", lambda ch: unary(ch, "/qnet.v1.HardwarePlane/MoveGroup", field(2, "mallory"))),
    ("grpc.health.v1.Health/Check", lambda ch: unary(ch, "/grpc.health.v1.Health/Check")),
    ("reflection", lambda ch: server_stream_bidi_reflection(ch)),
]


def server_stream_bidi_reflection(ch):
    call = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                            request_serializer=None, response_deserializer=None)
    try:
        for _ in call(iter([field(7, "")]), timeout=5):  # list_services
            return grpc.StatusCode.OK, "answered"
        return grpc.StatusCode.OK, "closed"
    except grpc.RpcError as e:
        return e.code(), e.details()


REFUSED_AT_HANDSHAKE = {grpc.StatusCode.UNAVAILABLE}
for node in addresses:
    for name, call in EVERY_PORT:
        expect(f"plaintext {name} at {node} refused", call(channel(node)), REFUSED_AT_HANDSHAKE)
        expect(f"another CA's operator {name} at {node} refused",
               call(channel(node, creds(foreign, "operator-operator"))), REFUSED_AT_HANDSHAKE)

# The server must be the node the client meant: bob's address is not alice.
expect("operator reaching bob's address as 'alice' refused",
       unary(channel("bob", creds(pki, "operator-operator"), target="alice"), "/qnet.v1.Node/GetStatus"),
       REFUSED_AT_HANDSHAKE)

operator = creds(pki, "operator-operator")
expect("operator GetStatus at alice allowed", unary(channel("alice", operator), "/qnet.v1.Node/GetStatus"),
       {grpc.StatusCode.OK})
expect("health check with the operator's certificate", unary(channel("alice", operator), "/grpc.health.v1.Health/Check"),
       {grpc.StatusCode.OK})

# Node certificates: peering only, each as itself.
charlie = creds(pki, "node-charlie")
expect("charlie opening a peer stream to bob as alice refused", peer_stream(channel("bob", charlie), "alice"),
       {grpc.StatusCode.PERMISSION_DENIED}, "certificate names node 'charlie'")
expect("charlie opening a peer stream to alice (no link) refused", peer_stream(channel("alice", charlie), "charlie"),
       {grpc.StatusCode.PERMISSION_DENIED}, "no link")
expect("charlie moving a group to 'mallory' refused",
       unary(channel("alice", charlie), "/qnet.v1.HardwarePlane/MoveGroup", field(2, "mallory")),
       {grpc.StatusCode.PERMISSION_DENIED}, "acting as node 'mallory'")
expect("charlie moving a group as alice refused",
       unary(channel("bob", charlie), "/qnet.v1.HardwarePlane/MoveGroup", field(2, "alice")),
       {grpc.StatusCode.PERMISSION_DENIED}, "acting as node 'alice'")
expect("a node certificate reading keys refused", unary(channel("alice", charlie), "/qnet.v1.Node/GetKey", field(1, "1")),
       {grpc.StatusCode.PERMISSION_DENIED}, "node certificates are for peering")

# An app of alice: alice's own entanglement and keys, nothing of bob's.
app = creds(pki, "app-alice-vpn1")
expect("app of alice reading bob's keys refused", unary(channel("bob", app), "/qnet.v1.Node/GetKey", field(1, "1")),
       {grpc.StatusCode.PERMISSION_DENIED}, "only use its own node")
expect("app of alice entangling from bob refused",
       server_stream(channel("bob", app), "/qnet.v1.Node/Entangle", field(1, "alice")),
       {grpc.StatusCode.PERMISSION_DENIED}, "only use its own node")
expect("app of alice reading alice's routing table refused", unary(channel("alice", app), "/qnet.v1.Node/GetRoutes"),
       {grpc.StatusCode.PERMISSION_DENIED}, "apps may not call it")
expect("app of alice asking alice for an unknown key gets past authorisation",
       unary(channel("alice", app), "/qnet.v1.Node/GetKey", field(1, "no-such-key")),
       {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})

print(f"{len(failures)} checks failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
