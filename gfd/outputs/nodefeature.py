"""The NodeFeature object output and the `auto` probe (docs/labels-output.md).

Only this module talks to Kubernetes, and it imports the client inside its functions: the
import costs ~0.5 s and ~40 MiB, which file mode never pays. Only the subset that
kubernetes 36 and 37 share is used (docs/architecture.md#dependencies-and-why-these):
`CustomObjectsApi` with dict bodies, `ApiException.status`. The pod and discovery GETs go
through the shared `ApiClient` instead of `CoreV1Api`, whose import alone costs ~0.6 s on
kubernetes 37.

QPS and burst: the Python client has no rate limiter, so `_TokenBucket`
gives client-go's behaviour (`burst` calls at once, then `qps` per second).

Failures: a 409 Conflict is settled here, by reading the object again and retrying
(`CONFLICT_ATTEMPTS`); any other failure is raised as an OutputError that says whether
waiting may help (`retryable`: no answer, 408, 429, 5xx), for the daemon's backoff. No
request is retried behind the daemon's back (urllib3's own retries are off), and one
write never spends more than `WRITE_BUDGET_S` on the API, so a pass always ends.

Bad input at the edges is one line naming the thing: a kubeconfig that does not load
names the file and what is wrong with it; an answer that is not JSON (a proxy's login
page with 200, a load balancer's plain-text 502) names the request, the status and the
start of the body. Every answer is read raw (`_preload_content=False`, which both client
majors take) and decoded here, because the client's own decoding returns the text of a
`text/html` body as if it were the object.
"""

from __future__ import annotations

import copy
import enum
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gfd.backoff import parse_retry_after
from gfd.labelers.values import MAX_VALUE_LENGTH, is_valid_value
from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import OutputError
from nvlib.kubeclient import (
    SERVICE_ACCOUNT_TOKEN,
    ClientConfigError,
    KubeconfigError,
    client_configuration,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from gfd.outputs import OutputKind

__all__ = [
    "GROUP",
    "KIND",
    "NODE_NAME_LABEL",
    "PLURAL",
    "VERSION",
    "Discovery",
    "NodeFeatureOutput",
    "check_names",
    "discover_nodefeatures",
    "object_name",
]

log = logging.getLogger(__name__)

GROUP = "nfd.k8s-sigs.io"
VERSION = "v1alpha1"
PLURAL = "nodefeatures"
KIND = "NodeFeature"
NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"

SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"

# client-go's defaults, used when a flag is 0 (rest.DefaultQPS / DefaultBurst).
DEFAULT_QPS = 5.0
DEFAULT_BURST = 10
# Upstream sets no timeout; a hung call would stall the labelling loop forever.
REQUEST_TIMEOUT_S = 10.0
DISCOVERY_TIMEOUT_S = 10.0
# All the requests of one write() share this: the bound on how long a pass can wait on
# an API server that accepts connections and never answers.
WRITE_BUDGET_S = 20.0
# A conflict means another writer got in between our GET and PUT; one more read
# nearly always settles it. client-go's retry.DefaultRetry also makes 5 attempts.
CONFLICT_ATTEMPTS = 5

_MAX_OBJECT_NAME = 253


def object_name(node_name: str) -> str:
    """`nvidia-features-for-<node>`: never the bare node name, which nfd-worker uses."""
    return f"nvidia-features-for-{node_name}"


def check_names(node_name: str, namespace: str) -> None:
    """The checks made before any API call (docs/labels-output.md#the-nodefeature-object)."""
    if not node_name:
        raise OutputError("required flag node-name not set")
    if not namespace:
        raise OutputError("required flag namespace not set")
    name = object_name(node_name)
    if len(name) > _MAX_OBJECT_NAME:
        raise OutputError(
            f'NodeFeature object name "{name}" is longer than {_MAX_OBJECT_NAME} characters'
        )
    # nfd-master finds the object by this label; an invalid value cannot be set.
    if not is_valid_value(node_name):
        raise OutputError(
            f'node name "{node_name}" is not a valid label value (at most {MAX_VALUE_LENGTH} '
            "characters, alphanumerics, '-', '_' or '.', starting and ending alphanumeric): "
            f"NFD could not associate a NodeFeature object with the node"
        )


class NodeFeatureOutput:
    """Publishes the labels as the node's NodeFeature object, created or updated on change."""

    kind: OutputKind = "nodefeature"

    def __init__(
        self,
        node_name: str,
        namespace: str,
        pod_name: str,
        kubeconfig: str,
        qps: float,
        burst: int,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        write_budget_s: float = WRITE_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
        metrics: GfdMetrics = NO_METRICS,
    ) -> None:
        check_names(node_name, namespace)
        self.metrics = metrics
        self.node_name, self.namespace, self.pod_name = node_name, namespace, pod_name
        self.name = object_name(node_name)
        self.request_timeout_s, self.write_budget_s = request_timeout_s, write_budget_s
        self._clock = clock
        self._limiter = _TokenBucket(qps, burst)
        self._api_client = _api_client(kubeconfig, os.environ)
        from kubernetes.client import CustomObjectsApi

        self._objects = CustomObjectsApi(self._api_client)
        # Once per outputer, as upstream (the DaemonSet outlives this pod), but at the
        # first write, within its time budget, and again at the next one while the API
        # server cannot answer. None: not resolved yet.
        self.owner_references: list[dict[str, Any]] | None = None

    def write(self, labels: Mapping[str, str]) -> None:
        """GET, then CREATE when absent, or PUT only when the object would change;
        a conflict reads the object again, up to CONFLICT_ATTEMPTS times."""
        deadline = self._deadline()
        if self.owner_references is None:
            self.owner_references = self._resolve_owner(deadline)
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            conflict = self._write_once(labels, deadline)
            if conflict is None:
                return
            log.info(
                "NodeFeature object %s changed under us (%d of %d), reading it again: %s",
                self.name,
                attempt,
                CONFLICT_ATTEMPTS,
                conflict,
            )
        raise OutputError(
            f'failed to update NodeFeature object "{self.name}": still conflicting after '
            f"{CONFLICT_ATTEMPTS} attempts: {conflict}",
            retryable=True,
        )

    def withdraw(self) -> None:
        """Delete the object: the feature file carries the labels now. Unlike cleanup(),
        which never deletes, this runs only when the output moved to the file."""
        try:
            self._call(
                self._objects.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                deadline=self._deadline(),
                request=("DELETE", self._object_path()),
                decode=False,  # the answer is a Status nobody reads
            )
        except _api_errors() as err:
            if _status(err) == 404:
                return
            self.metrics.output_write("nodefeature_delete", ok=False)
            raise _output_error(f'failed to delete NodeFeature object "{self.name}"', err) from err
        self.metrics.output_write("nodefeature_delete", ok=True)
        log.info(
            "Deleted NodeFeature object %s/%s: the feature file carries the labels",
            self.namespace,
            self.name,
        )

    def _write_once(self, labels: Mapping[str, str], deadline: float) -> str | None:
        """One GET and the CREATE or PUT it calls for; the conflict's text, or None."""
        try:
            current = self._call(
                self._objects.get_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                deadline=deadline,
                request=("GET", self._object_path()),
            )
        except _api_errors() as err:
            if _status(err) != 404:
                raise _output_error("failed to get NodeFeature object", err) from err
            return self._create(labels, deadline)
        wanted = self._updated(current, labels)
        if _semantic(wanted) == _semantic(current):
            log.info("no changes in NodeFeature object %s", self.name)
            return None
        log.info("Updating NodeFeature object %s", self.name)
        try:
            # PUT carries the resourceVersion just read: a concurrent writer
            # makes this fail with a conflict instead of being overwritten.
            self._call(
                self._objects.replace_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.name,
                wanted,
                deadline=deadline,
                request=("PUT", self._object_path()),
            )
        except _api_errors() as err:
            self.metrics.output_write("nodefeature_update", ok=False)
            if _status(err) == 409:
                return _describe(err)
            raise _output_error(f'failed to update NodeFeature object "{self.name}"', err) from err
        self.metrics.output_write("nodefeature_update", ok=True)
        return None

    def cleanup(self) -> None:
        """Never deletes the object: a restart must not drop the node's labels
        owner GC and nfd-gc remove it. Only releases connections."""
        self.close()

    def close(self) -> None:
        self._api_client.close()

    def new_object(self, labels: Mapping[str, str]) -> dict[str, Any]:
        """The object GFD creates (docs/labels-output.md#the-nodefeature-object)."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {NODE_NAME_LABEL: self.node_name},
        }
        if self.owner_references:
            metadata["ownerReferences"] = copy.deepcopy(self.owner_references)
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": metadata,
            "spec": _spec(labels),
        }

    def _create(self, labels: Mapping[str, str], deadline: float) -> str | None:
        """POST the object; the conflict's text when another writer created it first."""
        log.info("creating NodeFeature object %s", self.name)
        try:
            self._call(
                self._objects.create_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                self.new_object(labels),
                deadline=deadline,
                request=("POST", self._object_path(collection=True)),
            )
        except _api_errors() as err:
            self.metrics.output_write("nodefeature_create", ok=False)
            if _status(err) == 409:  # AlreadyExists: read it, then update it
                return _describe(err)
            raise _output_error(f'failed to create NodeFeature object "{self.name}"', err) from err
        self.metrics.output_write("nodefeature_create", ok=True)
        log.info("created NodeFeature object %s/%s", self.namespace, self.name)
        return None

    def _updated(self, current: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
        """`current` with GFD's parts replaced whole; server fields (resourceVersion,
        uid, annotations) are kept, as upstream's DeepCopy-and-assign does."""
        wanted = copy.deepcopy(dict(current))
        metadata = wanted.setdefault("metadata", {})
        metadata["labels"] = {NODE_NAME_LABEL: self.node_name}
        if self.owner_references:
            metadata["ownerReferences"] = copy.deepcopy(self.owner_references)
        else:
            metadata.pop("ownerReferences", None)
        wanted["spec"] = _spec(labels)
        return wanted

    def _resolve_owner(self, deadline: float) -> list[dict[str, Any]]:
        """Only the DaemonSet owner, as controller ([PROJECT]):
        a Pod owner would change on every restart and needs `delete` to update.
        A retryable OutputError when the API server could not answer: an object
        created without its owner would never be garbage-collected."""
        if not self.pod_name:
            log.info("Pod name not provided, skipping owner reference resolution")
            return []
        namespace, pod_name = quote(self.namespace, safe=""), quote(self.pod_name, safe="")
        path = f"/api/v1/namespaces/{namespace}/pods/{pod_name}"
        try:
            pod = self._call(
                _get_json, self._api_client, path, deadline=deadline, request=("GET", path)
            )
        except _api_errors() as err:
            if _retryable(err):
                what = f"failed to get pod {self.namespace}/{self.pod_name} for its owner"
                raise _output_error(what, err) from err
            log.warning(
                "Failed to resolve owner references: failed to get pod %s/%s: %s",
                self.namespace,
                self.pod_name,
                _describe(err),
            )
            return []
        refs = ((pod or {}).get("metadata") or {}).get("ownerReferences") or []
        daemonset = next((ref for ref in refs if ref.get("kind") == "DaemonSet"), None)
        if daemonset is None:
            log.info("Pod is not owned by a DaemonSet, skipping owner reference resolution")
            return []
        return [
            {
                "apiVersion": daemonset.get("apiVersion", ""),
                "kind": "DaemonSet",
                "name": daemonset.get("name", ""),
                "uid": daemonset.get("uid", ""),
                "controller": True,
            }
        ]

    def _deadline(self) -> float:
        return self._clock() + self.write_budget_s

    def _object_path(self, *, collection: bool = False) -> str:
        namespace = quote(self.namespace, safe="")
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return path if collection else f"{path}/{quote(self.name, safe='')}"

    def _call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        deadline: float,
        request: tuple[str, str],
        decode: bool = True,
    ) -> Any:
        """`fn`'s answer as a JSON object (None when not `decode`). `request` (method,
        path) names it in the errors: _NotJson for a 2xx that is not one, and any
        other failure carries it (`_describe` shows it for a body that is no Status).
        A failure is counted by its status (a 404, an object not there yet, is an answer
        the writer expects, not an error)."""
        self._limiter.acquire()
        left = deadline - self._clock()
        if left <= 0:
            spent = f"gave up: this write's {self.write_budget_s:g} s for the API are spent"
            raise _BudgetSpent(spent)
        where = f"{request[0]} {self._api_client.configuration.host}{request[1]}"
        try:
            timeout = min(self.request_timeout_s, left)
            if fn is _get_json:  # reads raw and decodes itself
                return fn(*args, _request_timeout=timeout)
            response = fn(*args, _request_timeout=timeout, _preload_content=False)
            if not decode:
                response.release_conn()
                return None
            return _decoded(response, where)
        except _api_errors() as err:
            if _status(err) != 404:
                self.metrics.api_error(_status(err))
            err.gfd_request = where  # type: ignore[attr-defined]  # read back by getattr
            raise


class _BudgetSpent(TimeoutError):
    """A write ran out of time before its next request: as retryable as a timeout."""


class Discovery(enum.Enum):
    """What API discovery says about NodeFeature for `auto` (docs/labels-output.md)."""

    SERVED = "served"
    ABSENT = "absent"  # a definite no: no client config, not served, 401/403/404
    UNREACHABLE = "unreachable"  # no answer, 408, 429, 5xx: ask again at the next pass


def discover_nodefeatures(
    kubeconfig: str,
    environ: Mapping[str, str],
    *,
    token_path: str = SERVICE_ACCOUNT_TOKEN,
    metrics: GfdMetrics = NO_METRICS,
) -> Discovery:
    """The `auto` rule (docs/labels-output.md#choosing-the-output) without an explicit file.

    SERVED when a client config exists (the kubeconfig, else in-cluster when
    KUBERNETES_SERVICE_HOST is set and the service-account token exists) and
    discovery of `nfd.k8s-sigs.io/v1alpha1` lists `nodefeatures`. UNREACHABLE when
    the server did not answer or answered 408, 429 or 5xx: that settles nothing, the
    caller asks again. Any other failure is ABSENT: the feature file works
    everywhere, so it is the fallback.
    """
    if kubeconfig:
        source = f"kubeconfig {kubeconfig}"
    elif environ.get(SERVICE_HOST_ENV) and os.path.isfile(token_path):
        source = "in-cluster config"
    else:
        log.info("No Kubernetes client config (no kubeconfig, not in a cluster)")
        return Discovery.ABSENT
    group_version = f"{GROUP}/{VERSION}"
    try:
        api_client = _api_client(kubeconfig, environ, token_path=token_path)
        try:
            found = _get_json(api_client, f"/apis/{group_version}", DISCOVERY_TIMEOUT_S)
        finally:
            api_client.close()
    # Deliberately broad: a missing client, a bad config, TLS, DNS, 403 or 404
    # all mean "cannot use the API", and `auto` must then fall back, not fail.
    except Exception as err:
        if _status(err) is not None or _unanswered(err):  # an API error, not a bad config
            metrics.api_error(_status(err))
        if _unanswered(err):
            log.warning(
                "NodeFeature API discovery with %s got no answer, writing the feature file "
                "and asking again at the next pass: %s",
                source,
                _describe(err),
            )
            return Discovery.UNREACHABLE
        if isinstance(err, _KubeconfigError | _NotJson):
            # A file the deployment names that does not load, or a server that is not
            # an API server: a mistake to see, not the quiet "no NodeFeature API here".
            where = "" if isinstance(err, _KubeconfigError) else f"with {source}: "
            log.warning(
                "NodeFeature API not usable: %s%s; writing the feature file",
                where,
                err.fault if isinstance(err, _KubeconfigError) else _describe(err),
            )
            return Discovery.ABSENT
        log.info("NodeFeature API not usable with %s: %s", source, _describe(err))
        return Discovery.ABSENT
    resources = found.get("resources") or []
    served = any(r.get("name") == PLURAL for r in resources if isinstance(r, dict))
    log.info(
        "API discovery with %s: %s %s %s",
        source,
        group_version,
        PLURAL,
        "served" if served else "not served",
    )
    return Discovery.SERVED if served else Discovery.ABSENT


def _api_client(
    kubeconfig: str,
    environ: Mapping[str, str],
    *,
    token_path: str = SERVICE_ACCOUNT_TOKEN,
) -> ApiClient:
    """In-cluster config unless a kubeconfig is given (nvlib/kubeclient.py)."""
    from kubernetes import client

    try:
        configuration = client_configuration(kubeconfig, environ, token_path=token_path)
    except KubeconfigError as err:
        raise _KubeconfigError(err) from err
    except ClientConfigError as err:
        raise OutputError(str(err)) from err
    # No retries inside urllib3 (by default 3, at once, each with the full timeout):
    # the daemon backs off between attempts, and a write keeps to its time budget.
    configuration.retries = 0
    return client.ApiClient(configuration)


class _KubeconfigError(OutputError):
    """The kubeconfig named by the deployment does not load; the text names it."""

    def __init__(self, err: KubeconfigError) -> None:
        super().__init__(str(err))
        self.fault = err.fault  # the text after upstream's prefix


def _get_json(api_client: ApiClient, path: str, _request_timeout: float | None = None) -> Any:
    """GET `path` through the shared ApiClient (auth applied), returning a JSON object.

    The two client majors differ here only: 37 (OpenAPI Generator 7) splits
    param_serialize / call_api / response_deserialize, 36 has one call_api.
    Both raise ApiException for a non-2xx answer; a 2xx that is not a JSON object
    raises _NotJson.
    """
    headers = {"Accept": "application/json"}
    where = f"GET {api_client.configuration.host}{path}"
    if hasattr(api_client, "param_serialize"):  # kubernetes >= 37
        request = api_client.param_serialize(
            "GET", path, header_params=headers, auth_settings=["BearerToken"]
        )
        try:
            response = api_client.call_api(*request, _request_timeout=_request_timeout)
            response.read()
            if not 200 <= response.status <= 299:
                api_client.response_deserialize(response, {"200": "object"})  # raises
        except _api_errors() as err:
            err.gfd_request = where  # type: ignore[attr-defined]  # read back by getattr
            raise
        return _decoded(response, where)
    try:
        # kubernetes 36's signature; the type checker sees the installed 37's
        response = api_client.call_api(  # type: ignore[call-arg]
            path,
            "GET",
            header_params=headers,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=_request_timeout,
        )
    except _api_errors() as err:
        err.gfd_request = where  # type: ignore[attr-defined]  # read back by getattr
        raise
    return _decoded(response, where)


class _NotJson(Exception):
    """A 2xx answer that is not a JSON object: not the API server, but a proxy's page,
    another service, a body cut short. `status` is the 2xx: never worth waiting for."""

    def __init__(self, where: str, status: int, content_type: str, body: bytes) -> None:
        super().__init__(
            f"{where} answered {status} ({content_type or 'no content type'}), "
            f"not a JSON object: {_snippet(body)}"
        )
        self.status = status


def _decoded(response: Any, where: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer read raw (urllib3's, or the client's wrapper)."""
    try:
        body = response.data or b""
        headers = response.headers
        content_type = (headers.get("Content-Type") if headers is not None else None) or ""
        try:
            value = json.loads(body)
        except ValueError:  # not JSON, or not UTF-8
            value = None
    finally:
        release = getattr(response, "release_conn", None)
        if release is not None:
            release()
    if not isinstance(value, dict):
        raise _NotJson(where, response.status, content_type, body)
    return value


def _snippet(body: bytes | str | None, limit: int = 120) -> str:
    """The start of a body, on one line and quoted, for an error message."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = " ".join((body or "").split())
    if not text:
        return "an empty body"
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _api_errors() -> tuple[type[BaseException], ...]:
    """What a failed API call raises: an HTTP error answer, no answer at all, or an
    answer that is not JSON."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError, OSError, _NotJson)


def _status(err: BaseException) -> int | None:
    return getattr(err, "status", None)


def _retryable(err: BaseException) -> bool:
    """Whether waiting may help: no answer at all, or 408, 429 or a 5xx."""
    status = _status(err)
    return status is None or status in (408, 429) or status >= 500


def _unanswered(err: BaseException) -> bool:
    """A retryable API failure, for the probe, whose errors may also be a bad config."""
    try:
        errors = _api_errors()
    except ImportError:  # no client at all: nothing to wait for
        return False
    return isinstance(err, errors) and _retryable(err)


def _retry_after(err: BaseException) -> float | None:
    headers = getattr(err, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    return parse_retry_after(value, time.time())


def _output_error(what: str, err: BaseException) -> OutputError:
    return OutputError(
        f"{what}: {_describe(err)}", retryable=_retryable(err), retry_after_s=_retry_after(err)
    )


def _describe(err: BaseException) -> str:
    """One line, as client-go prints an API error: the Status message when the
    server sent one, not the client's multi-line dump of headers and body."""
    status = _status(err)
    if status is None or not hasattr(err, "body"):
        return str(err) or type(err).__name__
    try:
        message = json.loads(err.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    if message:
        return str(message)
    text = f"{getattr(err, 'reason', None) or 'error'} ({status})"
    where = getattr(err, "gfd_request", None)
    if where:
        text = f"{text} from {where}"
    if getattr(err, "body", None):  # not a Status: a proxy's page, a load balancer's text
        text = f"{text}: {_snippet(err.body)}"
    return text


def _spec(labels: Mapping[str, str]) -> dict[str, Any]:
    # Features always empty: GFD publishes labels only.
    return {
        "features": {"flags": {}, "attributes": {}, "instances": {}},
        "labels": dict(labels),
    }


def _semantic(value: Any) -> Any:
    """Normal form for equality: `null`, `{}` and `[]` all mean absent, as Go's
    semantic DeepEqual treats nil and empty maps."""
    if isinstance(value, Mapping):
        normal = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in normal.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


class _TokenBucket:
    """client-go's token bucket (flowcontrol.NewTokenBucketRateLimiter).

    0 selects client-go's default for that flag; a negative QPS disables
    limiting, as in client-go. Thread-safe, though GFD calls from one thread.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = DEFAULT_QPS if qps == 0 else qps
        self.burst = burst if burst > 0 else DEFAULT_BURST
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.qps < 0:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1  # may go negative: the debt is the wait below
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
