"""The slim Kubernetes device plugin (docs/deviceplugin.md).

It counts devices, watches their health and answers Allocate; the device map, the
preferred allocation and the Allocate answers are pure functions of the discovered
`Machine` and the v1 config, and gRPC, NVML events, files and signals stay at the edges
(`server`, `health`, `cdispec`, `daemon`). It never imports the Kubernetes client.
"""
