"""The Closte API client: typed results, retries, limits, and no leaked keys."""

from closte_sync.daemon.closte.client import (
    EVENT_KIND,
    USER_AGENT,
    ApiCall,
    ClosteClient,
    MissingApiKeyError,
    build_call,
)
from closte_sync.daemon.closte.results import CallResult, ListResult, Operation, ResultKind

__all__ = [
    "EVENT_KIND",
    "USER_AGENT",
    "ApiCall",
    "CallResult",
    "ClosteClient",
    "ListResult",
    "MissingApiKeyError",
    "Operation",
    "ResultKind",
    "build_call",
]
