"""`config-manager`: per-node configuration for the device plugin and GFD.

It runs beside them in their pod (an init container with `--oneshot`, and a sidecar),
watches its own Node's `nvidia.com/device-plugin.config` label, copies the config the
label names from the mounted ConfigMap directory to the file the daemon reads, and
sends the daemon SIGHUP so that it reloads. docs/deployment.md ("Per-node
configuration") describes the flags and the chart's wiring.

The pure parts (`selection`, `process.command_matches`, `node.LabelTracker`) are tables
in tests/configmanager; the edges (`kube`, the /proc scan, `manager`) are thin. Only
this package talks to Kubernetes among the plugin's pod's commands: the device plugin
itself never imports the Kubernetes client.
"""
