"""A small facade over the official client: server-side apply, list, delete, with one field manager."""

import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from kubernetes.dynamic.resource import Resource

from ..constants import FIELD_MANAGER
from ..metrics import WRITES
from .faults import after_write
from .retries import retrying

Obj = dict[str, Any]


def load_config(kubeconfig: str | None = None) -> client.ApiClient:
    """The API client for `kubeconfig`, $KUBECONFIG, ~/.kube/config or the in-cluster account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or os.path.exists(os.path.expanduser("~/.kube/config")):
        config.load_kube_config(config_file=path)
    else:
        config.load_incluster_config()
        configuration = client.Configuration.get_default_copy()
        follow_token_file(configuration, incluster_config.SERVICE_TOKEN_FILENAME)
        client.Configuration.set_default(configuration)
    return client.ApiClient()


def follow_token_file(configuration: client.Configuration, path: str) -> None:
    """Re-reads the projected API token as soon as the kubelet has replaced it (one stat per
    request), not once a minute as the client does: a token revoked at rotation then costs no
    failed requests. The kubelet swaps the whole folder, so the file's identity tells a new token.
    Every copy of the configuration (one per ApiClient) shares the hook and so the latest token."""
    latest: dict[str, Any] = {"identity": None, "token": None}

    def refresh(target: client.Configuration) -> None:
        try:
            stat = os.stat(path)
        except OSError:
            stat = None  # keep the token we have; the next request looks again
        if stat is not None and (stat.st_ino, stat.st_mtime_ns) != latest["identity"]:
            with open(path) as file:
                token = file.read().strip()
            if token:
                latest.update(identity=(stat.st_ino, stat.st_mtime_ns), token=f"bearer {token}")
        if latest["token"]:
            target.api_key["BearerToken"] = latest["token"]

    refresh(configuration)
    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]  # typed None in the stubs


class AlreadyExists(Exception):
    """A create found the name taken."""


class Kube:
    """The operations reconcilers need, each one API call, all under our field manager."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    @cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api_client)

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. v1.37.2."""
        return str(client.VersionApi(self.api_client).get_code().git_version)

    def served_resources(self, group_version: str) -> set[str]:
        """The resources served under `group_version` (subresources left out); empty when the API
        server does not serve that version at all."""
        try:
            found = self.dynamic.request("GET", f"/apis/{group_version}").to_dict()
        except NotFoundError:
            return set()
        return {r["name"] for r in found.get("resources", []) if "/" not in r["name"]}

    def resource(self, api_version: str, kind: str) -> Resource:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply: we own exactly the fields we send; a repeat with the same body is a no-op."""
        meta = obj["metadata"]
        WRITES.labels(kind=obj["kind"], verb="apply").inc()
        result = retrying(
            lambda: self.dynamic.server_side_apply(
                self.resource(obj["apiVersion"], obj["kind"]),
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        )
        after_write()
        return dict(result.to_dict())

    def create(self, obj: Obj) -> Obj:
        """Creates an object that must not exist yet: 409 AlreadyExists tells the caller someone
        (perhaps its own earlier try) created it first, which apply would hide."""
        meta = obj["metadata"]
        WRITES.labels(kind=obj["kind"], verb="create").inc()

        def create() -> Any:
            try:
                return self.resource(obj["apiVersion"], obj["kind"]).create(
                    body=obj, namespace=meta.get("namespace"), field_manager=FIELD_MANAGER
                )
            except ApiException as error:
                if error.status == 409:  # not a conflict to wait out: the name is taken for good
                    raise AlreadyExists(meta["name"]) from error
                raise

        result = retrying(create)
        after_write()
        return dict(result.to_dict())

    def apply_status(self, obj: Obj) -> Obj:
        """Server-side apply to the status subresource (the main endpoint ignores status)."""
        meta = obj["metadata"]
        status = self.resource(obj["apiVersion"], obj["kind"]).subresources["status"]
        result = retrying(
            lambda: self.dynamic.server_side_apply(
                status,
                body={k: obj[k] for k in ("apiVersion", "kind", "metadata", "status")},
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        )
        after_write()
        return dict(result.to_dict())

    def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        """Every object of a kind matching the label and field selectors."""
        result = self.resource(api_version, kind).get(
            namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        # List items come without apiVersion and kind; add them so items compare with desired objects.
        return [{"apiVersion": api_version, "kind": kind, **item} for item in result.to_dict()["items"]]

    def dry_run_refusal(self, obj: Obj) -> str | None:
        """Server-side dry-run create: None when the API server would admit `obj`, else its
        refusal (admission runs in full on a dry run; nothing is stored). Throttling and
        conflicts are retried like any write (after Retry-After); other errors are raised."""
        try:
            retrying(
                lambda: self.resource(obj["apiVersion"], obj["kind"]).create(
                    body=obj,
                    namespace=obj["metadata"].get("namespace"),
                    dry_run="All",
                    field_manager=FIELD_MANAGER,
                )
            )
        except ApiException as error:
            if error.status not in (400, 403, 422):
                raise
            return str(error.body or error.reason)
        return None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """One object, or None when it does not exist."""
        try:
            return dict(self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict())
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Deletes one object; False when it was already gone (deleting twice is not an error)."""
        WRITES.labels(kind=kind, verb="delete").inc()
        try:
            # Background propagation: dependents go too (batch Jobs would otherwise orphan their pods).
            retrying(
                lambda: self.resource(api_version, kind).delete(
                    name=name, namespace=namespace, body={"propagationPolicy": "Background"}
                )
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        after_write()
        return True

    def patch(self, api_version: str, kind: str, name: str, body: Obj, namespace: str | None = None) -> Obj:
        """Strategic merge patch, for fields server-side apply cannot share (atomic lists we co-own)."""
        WRITES.labels(kind=kind, verb="patch").inc()
        result = retrying(
            lambda: self.resource(api_version, kind).patch(
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/strategic-merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
        )
        after_write()
        return dict(result.to_dict())

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj
    ) -> None:
        """JSON merge patch of the status subresource (None removes a field)."""
        WRITES.labels(kind=kind, verb="patch-status").inc()
        resource = self.resource(api_version, kind).subresources["status"]
        retrying(
            lambda: self.dynamic.patch(
                resource,
                body={"status": status},
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
        )
        after_write()

    def record_event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        """A core/v1 Event about `involved` (in its namespace, or default for cluster-scoped ones)."""
        meta = involved["metadata"]
        # An event about a namespace lives in that namespace, where `kubectl describe` finds it.
        home = meta["name"] if involved["kind"] == "Namespace" else "default"
        namespace = meta.get("namespace") or home
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Named as client-go's recorder names them, <object>.<nanoseconds in hex>: the API server
        # lists by name, so an object's Events of the same second keep the order they happened in
        # (kubectl describe sorts by a timestamp of whole seconds, and keeps ties in list order).
        name = f"{meta['name']}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "uid": meta.get("uid"),
                **({"namespace": namespace} if namespace != "default" or meta.get("namespace") else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": FIELD_MANAGER},
        }
        WRITES.labels(kind="Event", verb="create").inc()
        self.resource("v1", "Event").create(body=event, namespace=namespace)
        after_write()

    def apply_all(self, objs: Iterable[Obj]) -> int:
        """Applies each object; returns how many were sent."""
        count = 0
        for obj in objs:
            self.apply(obj)
            count += 1
        return count
