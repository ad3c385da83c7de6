"""The committed gRPC code is exactly what the committed proto generates."""

import subprocess
import sys

from .conftest import REPO

GENERATED = ("rollmatch_pb2.py", "rollmatch_pb2.pyi", "rollmatch_pb2_grpc.py")


def test_generated_code_matches_the_proto(tmp_path):
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-Irollmatch/_pb=proto",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        "proto/rollmatch/v1/rollmatch.proto",
    ]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    for name in GENERATED:
        fresh = (tmp_path / "rollmatch/_pb/rollmatch/v1" / name).read_text()
        committed = (REPO / "rollmatch/_pb/rollmatch/v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: regenerate with: {' '.join(command[1:])} (outputs to .)"
