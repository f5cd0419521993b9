#!/usr/bin/python3
"""A gRPC client that knows nothing of qnet's schema, as grpcurl is: against
daemons started by `qnetctl up` it lists the services through server
reflection (v1, which current clients ask first, and v1alpha), fetches
qnet.v1.Node's descriptors, builds a GetStatusRequest from them alone and
calls Node.GetStatus. Uses Debian's python3-grpcio and python3-protobuf; the
reflection messages themselves come from proto/grpc/reflection/v1 through
protoc's Python output (as a client ships them compiled in). Prints a line
per check; exits 1 if any failed.

usage: reflection_mptest.py QNETCTL PROTOC SOURCE_DIR
"""
import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

qnetctl, protoc, source = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(what, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        failures.append(what)


def reflection_module(work, version):
    """reflection.proto under package grpc.reflection.VERSION, compiled for
    Python as reflection_VERSION_pb2 (a module path that cannot shadow grpc)."""
    with open(os.path.join(source, "proto/grpc/reflection/v1/reflection.proto")) as f:
        text = f.read().replace("package grpc.reflection.v1;", f"package grpc.reflection.{version};")
    with open(os.path.join(work, f"reflection_{version}.proto"), "w") as f:
        f.write(text)
    subprocess.run([protoc, f"-I{work}", f"--python_out={work}", f"reflection_{version}.proto"], check=True)
    return importlib.import_module(f"reflection_{version}_pb2")


def ask(channel, module, version, requests):
    call = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                 request_serializer=module.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=module.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=30))


def main():
    work = tempfile.mkdtemp(prefix="qnet-reflection-")
    sys.path.insert(0, work)
    state = os.path.join(work, "state")
    ctl = [qnetctl, "--state-dir", state]
    try:
        v1 = reflection_module(work, "v1")
        v1alpha = reflection_module(work, "v1alpha")
        subprocess.run(ctl + ["up", os.path.join(source, "examples/ideal-pair.yaml")], check=True, timeout=120)
        with open(os.path.join(state, "alice.address")) as f:
            address = f.readline().strip()
        pki = os.path.join(state, "pki")
        operator = glob.glob(os.path.join(pki, "operator-*.crt"))[0][:-len(".crt")]

        def read(path):
            with open(path, "rb") as f:
                return f.read()

        credentials = grpc.ssl_channel_credentials(root_certificates=read(os.path.join(pki, "ca.crt")),
                                                   private_key=read(operator + ".key"),
                                                   certificate_chain=read(operator + ".crt"))
        options = [("grpc.ssl_target_name_override", "alice")]
        channel = grpc.secure_channel(address, credentials, options=options)

        # The services, through both versions.
        expected = {"qnet.v1.Node", "qnet.v1.Peer", "qnet.v1.HardwarePlane", "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
        for module, version in ((v1, "v1"), (v1alpha, "v1alpha")):
            answers = ask(channel, module, version, [module.ServerReflectionRequest(list_services="")])
            names = {s.name for s in answers[0].list_services_response.service}
            check(f"{version} list_services names {sorted(expected)}", expected <= names, sorted(names))

        # Node's schema through v1 alone, then a call built from it.
        answers = ask(channel, v1, "v1", [
            v1.ServerReflectionRequest(file_containing_symbol="qnet.v1.Node"),
            v1.ServerReflectionRequest(file_containing_symbol="qnet.v1.Peer"),
            v1.ServerReflectionRequest(file_containing_symbol="qnet.v1.NoSuchService"),
            v1.ServerReflectionRequest(host="alice"),
        ])
        check("v1 answers each of 4 requests in order", len(answers) == 4 and
              answers[0].original_request.file_containing_symbol == "qnet.v1.Node", len(answers))
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for a in answers[:2] for b in a.file_descriptor_response.file_descriptor_proto]
        names = [f.name for f in files]
        check("no file is sent twice on one stream", len(names) == len(set(names)), names)
        check("Node's file comes first", names and any(s.name == "Node" for s in files[0].service), names)
        check("an unknown symbol is NOT_FOUND", answers[2].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
              answers[2])
        check("a request with no question is INVALID_ARGUMENT",
              answers[3].error_response.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0], answers[3])

        pool = descriptor_pool.DescriptorPool()
        pending, added = list(files), set()
        while pending:  # imports before the files that import them
            ready = [f for f in pending if all(d in added for d in f.dependency)]
            if not ready:
                check("every import was sent", False, [(f.name, list(f.dependency)) for f in pending])
                return 1
            for f in ready:
                pool.Add(f)
                added.add(f.name)
                pending.remove(f)
        method = pool.FindServiceByName("qnet.v1.Node").FindMethodByName("GetStatus")
        factory = message_factory.MessageFactory(pool)
        request_type = factory.GetPrototype(method.input_type)
        response_type = factory.GetPrototype(method.output_type)
        get_status = channel.unary_unary("/qnet.v1.Node/GetStatus", request_serializer=request_type.SerializeToString,
                                         response_deserializer=response_type.FromString)
        status = get_status(request_type(), timeout=30)
        check("Node.GetStatus through reflection alone answers node alice of network ideal-pair",
              status.node == "alice" and status.network == "ideal-pair", status)
        check("its neighbours field is bob", [n.name for n in status.neighbours] == ["bob"], status)

        # Authenticated like every other service: no client certificate, no answer.
        anonymous = grpc.secure_channel(address, grpc.ssl_channel_credentials(
            root_certificates=read(os.path.join(pki, "ca.crt"))), options=options)
        try:
            ask(anonymous, v1, "v1", [v1.ServerReflectionRequest(list_services="")])
            check("reflection without a client certificate is refused", False, "it answered")
        except grpc.RpcError as e:
            check("reflection without a client certificate is refused", e.code() == grpc.StatusCode.UNAVAILABLE,
                  e.code())
    finally:
        subprocess.run(ctl + ["down"], timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
