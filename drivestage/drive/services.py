"""googleapiclient's Drive service, built once per process and copied for each connection.

googleapiclient builds a service from the discovery document (parsing it, then making a
function for every method of each collection with its documentation rendered), and builds
a collection anew on every ``service.files()``: about 3 ms of CPU each, which PyDrive2 asks
for on every metadata call, and 5-10 ms for a connection's service and first collections.
Built once here (on no connection), each connection gets a copy whose methods are the same
functions bound to it, sending through its own ``http``; a copy per thread, as the
connections are. A service for another root (an emulator on another port) is made from the
first one's: only the methods whose address googleapiclient takes from the document's root
(a media upload's, a batch's) are built again.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Optional

from drivestage.drive.connections import discovery_doc
from drivestage.errors import UsageError


def build_service(doc: dict[str, Any], http: Any) -> Any:
    """googleapiclient's service from the discovery document ``doc``, whose requests go
    through ``http``; its collections (``files()``, ``about()``...) are built once per thread.

    googleapiclient builds a collection anew on every ``service.files()``, rendering every
    method's documentation (about 3 ms of CPU); PyDrive2 asks for it on every metadata call,
    which made it most of a call's cost on a fast link. A collection holds no per-request
    state (every request names its connection, ``execute(http=...)``), but it is kept per
    thread all the same, as the connections are."""
    return _Built(doc).service(http)


def drive_service(api_root: Optional[str], http: Any) -> Any:
    """:func:`build_service` on :func:`discovery_doc` of ``api_root``, from a service and
    collections built once per process: each connection gets copies that send through its
    own ``http`` (the build, parsing the document and making every method, cost 5-10 ms of
    CPU for each connection and again in each of its threads: 6 % of the CPU of the tests).
    Another root's (an emulator's on another port) is the same but for its address: it is
    made from the first one's (:meth:`_Built.rebased`)."""
    # (read by the build; another root than Google's is no universe's: _Built)
    universe = None if _rebases(api_root) else os.environ.get(_UNIVERSE) or None
    if universe is not None:
        _same_universe(universe, getattr(http, "credentials", None))
    key = (api_root, universe)
    with _BUILT_LOCK:
        built = _BUILT.pop(key, None)
        if built is None:
            like = next((b for k, b in reversed(_BUILT.items()) if k[1] == key[1]
                         and b.rebases), None)
            if api_root is not None and _rebases(api_root) and like is not None:
                built = like.rebased(api_root)
            else:
                built = _Built(discovery_doc(api_root))
        _BUILT[key] = built   # (the most recent last)
        while len(_BUILT) > _BUILT_KEPT:
            del _BUILT[next(iter(_BUILT))]
    return built.service(http)


#: The services built per API root (:func:`drive_service`), the most recently used last; a
#: process talks to one root (tests: one emulator at a time, or a few).
_BUILT: dict[tuple[Optional[str], Optional[str]], "_Built"] = {}
_BUILT_KEPT = 4
_BUILT_LOCK = threading.RLock()   # (every build: they complete the document's methods)


def _unlocked_in_child() -> None:
    """A forked child's lock, free: a thread of the parent that held it as the process
    forked (building a service) is not in the child, and its first connect waited forever
    (a fork server's child, a pool's worker: attacksvc39)."""
    global _BUILT_LOCK
    _BUILT_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_unlocked_in_child)


class ThreadConnection:
    """The connection a service of PyDrive2's ``gauth`` sends on where a request names none
    (googleapiclient's ``execute()``, a batch's or an upload's own): the calling thread's,
    PyDrive2's own for it (made as PyDrive2 makes it, and dropped with it after a lost
    connection: :meth:`drivestage.drive.transport.Transport.drop`). One connection for every
    thread, as the service's was, had two threads' requests on one keep-alive socket
    (httplib2 is not thread-safe): a pull's look-ups of files changed since the listing
    timed out, or raised AttributeError from inside httplib2 (attacksvc39)."""

    def __init__(self, gauth: Any):
        self._gauth = gauth

    def _mine(self) -> Any:
        local = self._gauth.thread_local
        if getattr(local, "http", None) is None:
            local.http = self._gauth.Get_Http_Object()
        return local.http

    @property
    def credentials(self) -> Any:
        """What googleapiclient checks (universe) and refreshes a batch's calls with."""
        return self._gauth.credentials

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self._mine().request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:   # timeout, close, connections
        return getattr(self._mine(), name)


_UNIVERSE = "GOOGLE_CLOUD_UNIVERSE_DOMAIN"
_GOOGLES = "googleapis.com"


def _same_universe(universe: str, credentials: Any) -> None:
    """UsageError where ``$GOOGLE_CLOUD_UNIVERSE_DOMAIN`` names another universe than the
    credentials': googleapiclient refused every request before sending it, and its error
    read as the server's answer, "not what Drive sends" (attacksvc39)."""
    theirs = str(getattr(credentials, "universe_domain", None) or _GOOGLES)
    if theirs != universe:
        source = getattr(credentials, "source", "the credentials")
        raise UsageError(f"{_UNIVERSE}={universe} names another universe than the credentials "
                         f"from {source} ({theirs}): Drive answers in {theirs}; unset {_UNIVERSE}"
                         f", or use credentials made in {universe}")


def _rebases(root: Optional[str]) -> bool:
    """Whether a service for ``root`` may be made from another root's (not Google's own:
    its address may be rewritten for a universe domain as it is built)."""
    return root is not None and "googleapis.com" not in root


class _NoConnection:
    """The connection of a service that is only copied (:class:`_Built`): never used."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("drivestage sent a request through a service built to be copied")


class _Built:
    """A googleapiclient service and its collections built once from a discovery document
    (on no connection), copied for each connection (:func:`_copy_for`)."""

    def __init__(self, doc: dict[str, Any], like: "Optional[_Built]" = None):
        from googleapiclient.discovery import build_from_document

        self.doc = doc
        self.rebases = _rebases(doc.get("rootUrl"))
        self._like = like
        if like is None:
            # (An emulator's or proxy's root is no universe's: built in Google's, whatever
            # $GOOGLE_CLOUD_UNIVERSE_DOMAIN says, every request was refused unsent.)
            self._root = build_from_document(doc, http=_NoConnection(), client_options={
                "universe_domain": _GOOGLES} if self.rebases else None)
        else:
            self._root = _at_root(like._root, doc, "")
        self._names = [n for n in doc.get("resources", {})
                       if callable(getattr(self._root, n, None))]
        self._collections: dict[str, Any] = {}

    def rebased(self, root: str) -> "_Built":
        """This service for the API at ``root``: its methods are this one's but for those
        whose address the document's root gives (a media upload's, a batch's)."""
        origin = self._like or self   # (not a chain of every root ever used)
        doc = dict(origin.doc)   # (the rest is the same document: shared, as the methods)
        doc["rootUrl"] = doc["mtlsRootUrl"] = root
        doc["baseUrl"] = root + doc["servicePath"]
        return _Built(doc, like=origin)

    def _collection(self, name: str) -> Any:
        with _BUILT_LOCK:
            built = self._collections.get(name)
            if built is None:
                if self._like is None:
                    built = getattr(self._root, name)()
                else:
                    built = _at_root(self._like._collection(name), self.doc, name)
                self._collections[name] = built
            return built

    def service(self, http: Any) -> Any:
        """A copy of the service that sends through ``http``, whose collections are copies
        too, made once per thread."""
        service = _copy_for(self._root, http)
        local = threading.local()

        def cached(name: str) -> Any:
            def collection() -> Any:
                mine = getattr(local, name, None)
                if mine is None:
                    mine = _copy_for(self._collection(name), http)
                    setattr(local, name, mine)
                return mine

            collection.__doc__ = "A collection resource."
            return collection

        for name in self._names:
            service.__dict__[name] = cached(name)
        return service


def _at_root(resource: Any, doc: dict[str, Any], name: str) -> Any:
    """A copy of ``resource`` (the service, ``name`` "", or its collection ``name``) built
    from another root's document, for the root of ``doc``: every address a method makes
    starts from the resource's base URL but a media upload's and a batch's, which
    googleapiclient takes from the document's root as it builds them: those are built again
    (a few of a collection's 20-odd methods)."""
    from googleapiclient.discovery import BatchHttpRequest, createMethod

    copy = _copy_for(resource, resource._http)
    copy._baseUrl = doc["baseUrl"]
    copy._rootDesc = doc
    if not name:
        copy._resourceDesc = doc
        batch_uri = doc["rootUrl"] + doc.get("batchPath", "batch")

        def new_batch_http_request(callback: Any = None) -> Any:
            return BatchHttpRequest(callback=callback, batch_uri=batch_uri)

        new_batch_http_request.__doc__ = resource.new_batch_http_request.__doc__
        copy.__dict__["new_batch_http_request"] = new_batch_http_request
        return copy
    for method_name, desc in doc["resources"][name].get("methods", {}).items():
        if "mediaUpload" not in desc:
            continue
        for suffix in ("", "_media") if desc.get("supportsMediaDownload") else ("",):
            fixed, method = createMethod(method_name + suffix, desc, doc, copy._schema)
            copy.__dict__[fixed] = method.__get__(copy, type(copy))
    return copy


def _copy_for(resource: Any, http: Any) -> Any:
    """A copy of googleapiclient's ``Resource`` ``resource`` that sends through ``http``: the
    methods built from the discovery document (the costly part) are the same functions, bound
    to the copy, which reads its connection as it sends (``self._http``). (``copy.copy``
    would build them again: a Resource's pickling rebuilds its methods.)"""
    copy = object.__new__(type(resource))
    copy.__dict__.update(resource.__dict__)
    copy._http = http
    copy._credentials_validated = False   # (checked against this connection's credentials)
    copy._dynamic_attrs = list(resource._dynamic_attrs)
    for name in resource._dynamic_attrs:
        value = resource.__dict__[name]
        if getattr(value, "__self__", None) is resource:
            copy.__dict__[name] = value.__func__.__get__(copy, type(copy))
    return copy
