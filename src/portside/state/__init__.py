"""The state backend: revisioned keys with compare-and-swap, prefix ranges, watch and leases.

`backend` is the contract (etcd v3's model); `memory` and `sqlite` are the embedded
implementations, which share `apply` (how a transaction changes the store), `watch`
(the watch handle) and `embedded` (their lock, watches, reaper and closing). docs/state.md says what is guaranteed.
"""

from portside.state.backend import (
    BackendClosed,
    Compacted,
    Compare,
    CompareOp,
    Delete,
    Event,
    EventType,
    Get,
    InvalidKey,
    InvalidRevision,
    InvalidTxn,
    KeyValue,
    LeaseNotFound,
    Op,
    OpResponse,
    Put,
    StateBackend,
    Target,
    TxnResult,
    Watch,
)
from portside.state.memory import MemoryBackend
from portside.state.sqlite import SqliteBackend

__all__ = [
    "BackendClosed", "Compacted", "Compare", "CompareOp", "Delete", "Event", "EventType", "Get",
    "InvalidKey", "InvalidRevision", "InvalidTxn", "KeyValue", "LeaseNotFound",
    "MemoryBackend", "Op", "OpResponse", "Put", "SqliteBackend", "StateBackend", "Target",
    "TxnResult", "Watch",
]
