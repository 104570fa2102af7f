"""The labelers' own output, before `compute_labels` drops what Kubernetes would reject.

`compute_labels` drops an invalid label (and logs it), so checking the validity of its
result proves nothing. These helpers check each labeler's raw output instead, and that
`compute_labels` kept every label the labelers produced.
"""

from __future__ import annotations

from gfd import labels as pipeline
from gfd.labelers.values import is_valid_value
from gfd.labelers.vgpu import vgpu_labels
from gfd.labels import compute_labels, is_valid_key
from nvlib.config import Config
from nvlib.model import Machine


def raw_outputs(machine: Machine, config: Config) -> dict[str, dict[str, str]]:
    """Each labeler's output by labeler name, in pipeline order (device labelers only
    on a node with GPUs, as the pipeline runs them)."""
    device = pipeline.DEVICE_LABELERS  # read at call time: a test may add a labeler
    labelers = (*device, vgpu_labels) if machine.gpus else (vgpu_labels,)
    return {labeler.__name__: labeler(machine, config) for labeler in labelers}


def assert_valid_and_none_dropped(machine: Machine, config: Config) -> dict[str, str]:
    """Every raw label is valid, and `compute_labels` returns all of them; returns them."""
    outputs = raw_outputs(machine, config)
    invalid = [
        (name, key, value)
        for name, labels in outputs.items()
        for key, value in labels.items()
        if not (is_valid_key(key) and is_valid_value(value))
    ]
    assert invalid == []
    union: dict[str, str] = {}
    for labels in outputs.values():
        union |= labels
    computed = compute_labels(machine, config)
    assert computed == union
    assert computed or not machine.gpus  # a node with GPUs gets labels: no vacuous pass
    return computed
