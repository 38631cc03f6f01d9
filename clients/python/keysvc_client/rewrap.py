"""Rewrap a column's worth of ciphertexts onto their keys' primary versions, in chunks.

    from keysvc_client.rewrap import rewrap_column
    new = rewrap_column(client, old, chunk=1000, progress=lambda done, total: print(done, total))

Each chunk is one ``Rewrap`` call. Items that fail (e.g. under a destroyed version) come
back as the typed error in their place instead of raising, so one bad row never stops a
migration; write back only the ``bytes`` results. Rewrap changes nothing server-side but
encryption counters, so a run killed halfway is resumed by running it again over the
column as it now is (already-current ciphertexts are simply re-encrypted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from keysvc_client._errors import BatchError, KeysvcError

if TYPE_CHECKING:
    from keysvc_client._client import KeyServiceClient


def rewrap_column(
    client: KeyServiceClient,
    ciphertexts: Sequence[bytes],
    chunk: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    *,
    context: Mapping[str, str] | None = None,
    contexts: Sequence[Mapping[str, str] | None] | None = None,
    write: Callable[[int, list[bytes | KeysvcError]], None] | None = None,
) -> list[bytes | KeysvcError]:
    """New ciphertexts in input order (or the per-item error); ``progress(done, total)`` per chunk.

    ``write(offset, results)`` is called after each chunk, before the next one is sent, so
    a caller can persist that chunk (e.g. UPDATE the rows) and lose nothing if interrupted.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    if contexts is not None and len(contexts) != len(ciphertexts):
        raise ValueError("contexts must have one entry per ciphertext")
    out: list[bytes | KeysvcError] = []
    total = len(ciphertexts)
    for start in range(0, total, chunk):
        part = ciphertexts[start : start + chunk]
        part_contexts = contexts[start : start + chunk] if contexts is not None else None
        results: list[bytes | KeysvcError] = []
        try:
            results += client.rewrap(part, context=context, contexts=part_contexts)
        except BatchError as exc:
            for r in exc.results:
                results.append(r.error if r.error is not None else bytes(r.value or b""))
        if write is not None:
            write(start, results)
        out += results
        if progress is not None:
            progress(len(out), total)
    return out
