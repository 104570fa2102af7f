#!/usr/bin/env bash
# Regenerate api_pb2.py, api_pb2.pyi and api_pb2_grpc.py from api.proto.
#
# Run from anywhere, with grpcio-tools==1.85.1 installed (the test extra's pin):
#     deviceplugin/v1beta1/regenerate.sh [OUTPUT_ROOT]
# It compiles from the repository root with -I. so the modules import as
# deviceplugin.v1beta1.api_pb2. OUTPUT_ROOT (default: the repository root) lets the
# drift test generate into a temp dir and compare with the committed files.
# PYTHON picks the interpreter (default: python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(cd "${1:-$root}" && pwd)"
cd "$root"
"${PYTHON:-python3}" -m grpc_tools.protoc -I. \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  deviceplugin/v1beta1/api.proto
