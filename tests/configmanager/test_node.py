"""The label config-manager follows (configmanager/node.py).

The tracker's rules as a table of event sequences; then the list-then-watch loop,
through the real client configuration and HTTP, against the Node API double
(tests/support/node_api.py): a label change streamed by the watch, the watch resumed
from the last resourceVersion after a dropped connection, a bookmark or the server's
timeout, a re-list after 410 Gone (an expired watch, or a resume from a compacted
version), the Node deleted and back, a Node that appears late, and an error Status.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from node_api import NodeApiFake

from configmanager.kube import NodeApi
from configmanager.node import Backoff, LabelTracker, NodeWatcher
from nvlib.kubeclient import client_configuration

LABEL = "nvidia.com/device-plugin.config"
NODE = "node-1"


def node(labels: dict[str, str] | None) -> dict[str, Any]:
    return {"metadata": {"name": NODE, "labels": labels}}


# --- the tracker ------------------------------------------------------------------------

SEEN_A, SEEN_B = ("seen", {LABEL: "a"}), ("seen", {LABEL: "b"})
SEEN_NONE, SEEN_OTHER = ("seen", None), ("seen", {"other": "x"})
GONE = ("gone", None)


@pytest.mark.parametrize(
    ("events", "values"),
    [
        pytest.param([SEEN_A], ["a"], id="add-sets"),
        pytest.param([SEEN_NONE], [""], id="add-without-label-sets-empty"),
        pytest.param([SEEN_OTHER], [""], id="other-labels-only"),
        pytest.param([SEEN_A, SEEN_B], ["a", "b"], id="update-changes"),
        pytest.param([SEEN_A, SEEN_A], ["a", "a"], id="update-unchanged"),
        pytest.param([SEEN_A, SEEN_OTHER], ["a", ""], id="label-removed"),
        pytest.param([SEEN_A, GONE], ["a", ""], id="delete-clears"),
        pytest.param([SEEN_NONE, GONE], ["", ""], id="delete-of-unlabelled"),
        pytest.param([GONE], [None], id="delete-before-any-add-sets-nothing"),
        pytest.param([GONE, SEEN_B], [None, "b"], id="late-node"),
        pytest.param([SEEN_A, GONE, SEEN_A], ["a", "", "a"], id="deleted-and-back"),
    ],
)  # fmt: skip
def test_tracker(events: list[tuple[str, dict[str, str] | None]], values: list[str | None]) -> None:
    tracker = LabelTracker(LABEL)
    seen = []
    for kind, labels in events:
        if kind == "seen":
            tracker.node_seen(node(labels))
        else:
            tracker.node_gone()
        seen.append(tracker.value)
    assert seen == values


def test_wait_change_returns_first_set_then_only_changes() -> None:
    tracker = LabelTracker(LABEL)
    assert tracker.wait_change(None, 0.01) is None  # nothing set yet
    tracker.node_seen(node(None))
    assert tracker.wait_change(None, 0.01) == ""  # the first read returns the first set
    assert tracker.wait_change("", 0.01) is None
    threading.Timer(0.05, tracker.node_seen, [node({LABEL: "a"})]).start()
    assert tracker.wait_change("", 10) == "a"


# --- the watch loop against the API double ---------------------------------------------


@dataclass
class Watching:
    fake: NodeApiFake
    tracker: LabelTracker
    watcher: NodeWatcher
    thread: threading.Thread
    alive: list[int]

    def wait_value(self, value: str, timeout: float = 10) -> None:
        last = self.tracker.value
        while last != value:
            got = self.tracker.wait_change(last, timeout)
            assert got is not None, f"the label stayed {last!r}, never {value!r}"
            last = got


def is_list(request: dict[str, Any]) -> bool:
    return "watch" not in request["query"]


def watch_from(version: int) -> Any:
    return lambda r: (
        r["query"].get("watch") == "true" and r["query"].get("resourceVersion") == str(version)
    )


def start(fake: NodeApiFake, tmp_path: Path, *, watch_timeout_s: int = 300) -> Watching:
    configuration = client_configuration(fake.write_kubeconfig(tmp_path / "kubeconfig"), {})
    tracker, alive = LabelTracker(LABEL), [0]

    def beat() -> None:
        alive[0] += 1

    watcher = NodeWatcher(
        NodeApi(configuration), NODE, tracker, watch_timeout_s=watch_timeout_s,
        backoff=Backoff(0.05, 0.2), on_alive=beat,
    )  # fmt: skip
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    running.append((watcher, thread))
    return Watching(fake, tracker, watcher, thread, alive)


# Every loop a test started: stopped, and seen to end, before the next test.
running: list[tuple[NodeWatcher, threading.Thread]] = []


@pytest.fixture
def fake() -> Iterator[NodeApiFake]:
    with NodeApiFake() as server:
        yield server
        for watcher, _ in running:
            watcher.stop.set()
    for _, thread in running:  # the server's exit ended their watches
        thread.join(10)
        assert not thread.is_alive()
    running.clear()
    assert server.refusals == [], server.refusals


@pytest.fixture
def watching(fake: NodeApiFake, tmp_path: Path) -> Iterator[Watching]:
    fake.put_node(NODE, {})
    yield start(fake, tmp_path)


def test_list_then_watch_streams_label_changes(watching: Watching) -> None:
    fake = watching.fake
    watching.wait_value("")
    listed = fake.version
    first = fake.wait_request(watch_from(listed))
    assert is_list(fake.requests[0]) and first == 1
    assert fake.requests[0]["query"] == {"fieldSelector": f"metadata.name={NODE}"}
    assert fake.requests[1]["query"] == {
        "fieldSelector": f"metadata.name={NODE}", "watch": "true",
        "resourceVersion": str(listed), "allowWatchBookmarks": "true", "timeoutSeconds": "300",
    }  # fmt: skip
    fake.set_label(NODE, LABEL, "time-sliced")
    watching.wait_value("time-sliced")
    fake.set_label(NODE, "unrelated", "x")  # an update that leaves the label alone
    fake.set_label(NODE, LABEL, None)
    watching.wait_value("")
    assert len(fake.requests) == 2  # one list, one watch: no polling
    assert watching.alive[0] >= 4  # the list and each event


def test_dropped_connection_resumes_from_the_last_version(watching: Watching) -> None:
    fake = watching.fake
    fake.wait_request(watch_from(fake.version))
    seen = fake.set_label(NODE, LABEL, "a")
    watching.wait_value("a")
    count = len(fake.requests)
    fake.drop_watches()
    fake.wait_request(watch_from(seen), after=count)  # resumed: not a list
    fake.set_label(NODE, LABEL, "b")
    watching.wait_value("b")
    assert not [r for r in fake.requests[count:] if is_list(r)]


def test_changes_while_disconnected_arrive_on_resume(watching: Watching) -> None:
    fake = watching.fake
    seen = fake.version
    fake.wait_request(watch_from(seen))
    # the change lands after the cut and before the resumed watch: the resume replays it
    watching.watcher.backoff = Backoff(0.5, 0.5)
    count = len(fake.requests)
    fake.drop_watches()
    fake.set_label(NODE, LABEL, "while-away")
    fake.wait_request(watch_from(seen), after=count)
    watching.wait_value("while-away")


def test_expired_watch_relists(watching: Watching) -> None:
    fake = watching.fake
    fake.wait_request(watch_from(fake.version))
    count = len(fake.requests)
    fake.expire_watches()  # ERROR 410 on the open stream
    relisted = fake.wait_request(is_list, after=count)
    fake.wait_request(watch_from(fake.version), after=relisted)
    fake.set_label(NODE, LABEL, "after-relist")
    watching.wait_value("after-relist")
    assert watching.watcher.lists == 2


@pytest.mark.parametrize("gone_as", ["event", "status"])
def test_resume_from_a_compacted_version_relists(watching: Watching, gone_as: str) -> None:
    """Dropped, then history compacted: the resume gets 410 Gone (an ERROR event, or the
    HTTP status) and re-lists, and the label set meanwhile comes from the list."""
    fake = watching.fake
    fake.gone_as = gone_as
    seen = fake.version
    fake.wait_request(watch_from(seen))
    watching.watcher.backoff = Backoff(0.3, 0.3)
    count = len(fake.requests)
    fake.drop_watches()
    fake.set_label(NODE, LABEL, "compacted-away")
    fake.compact()
    resumed = fake.wait_request(watch_from(seen), after=count)
    relisted = fake.wait_request(is_list, after=resumed)
    watching.wait_value("compacted-away")
    fake.wait_request(watch_from(fake.version), after=relisted)


def test_bookmark_moves_the_resume_version(watching: Watching) -> None:
    fake = watching.fake
    fake.wait_request(watch_from(fake.version))
    fake.put_node("node-2", {LABEL: "not-ours"})  # a version our node's watch never sees
    before = watching.alive[0]
    fake.bookmark()
    count = len(fake.requests)
    while watching.alive[0] == before:  # the bookmark arrived
        watching.tracker.wait_change("", 0.01)
    fake.drop_watches()
    fake.wait_request(watch_from(fake.version), after=count)
    assert watching.tracker.value == ""


def test_server_timeout_resumes(fake: NodeApiFake, tmp_path: Path) -> None:
    fake.put_node(NODE, {LABEL: "a"})
    run = start(fake, tmp_path, watch_timeout_s=1)
    run.wait_value("a")
    first = fake.wait_request(watch_from(fake.version))
    fake.wait_request(watch_from(fake.version), after=first + 1, timeout=10)
    assert len([r for r in fake.requests if is_list(r)]) == 1


def test_node_deleted_and_back(watching: Watching) -> None:
    fake = watching.fake
    fake.set_label(NODE, LABEL, "a")
    watching.wait_value("a")
    fake.delete_node(NODE)
    watching.wait_value("")
    fake.put_node(NODE, {LABEL: "b"})
    watching.wait_value("b")


def test_node_that_appears_later(fake: NodeApiFake, tmp_path: Path) -> None:
    run = start(fake, tmp_path)
    fake.wait_request(lambda r: r["query"].get("watch") == "true")
    assert run.tracker.value is None  # nothing to read: the main loop keeps waiting
    fake.put_node(NODE, {LABEL: "late"})
    run.wait_value("late")


def test_error_status_relists_with_backoff(fake: NodeApiFake, tmp_path: Path) -> None:
    """A refused request (here a token the server does not take) is retried, backing off."""
    fake.put_node(NODE, {LABEL: "a"})
    kubeconfig = Path(fake.write_kubeconfig(tmp_path / "kubeconfig"))
    kubeconfig.write_text(kubeconfig.read_text().replace("node-api-fake-token", "wrong"))
    watcher = NodeWatcher(
        NodeApi(client_configuration(str(kubeconfig), {})), NODE, LabelTracker(LABEL),
        backoff=Backoff(0.05, 0.1),
    )  # fmt: skip
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    running.append((watcher, thread))
    fake.wait_request(lambda r: True, after=3)  # a fourth list: it keeps trying
    watcher.stop.set()  # it stops within its backoff wait, while the server still answers
    thread.join(10)
    assert watcher.tracker.value is None
    assert all(is_list(r) for r in fake.requests)
    assert {why for _, why in fake.refusals} == {"Unauthorized"}
    fake.refusals.clear()
