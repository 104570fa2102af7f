"""Generated kubelet device plugin API v1beta1 (see api.proto and regenerate.sh)."""
