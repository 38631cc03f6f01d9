"""Tokenization service: proto <-> domain translation only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from keysvc.errors import InvalidArgument, KeysvcError
from keysvc.server.servicers.crypto import check_batch
from keysvc.server.status import item_status
from keysvc.tokens.engine import Tokenizer
from keysvc.tokens.redaction import Redactor, Span, Word, label, mask
from keysvc.tokens.types import NO_METADATA, DetokenizeInput, Issued, Revealed, TokenizeInput
from keysvc_client._pb.keysvc.v1 import tokenization_pb2 as pb
from keysvc_client._pb.keysvc.v1 import tokenization_pb2_grpc

MAX_REDACT_CHARS = 200_000


def _fill_tokens(
    results: object, outcomes: Sequence[Issued | KeysvcError], references: Sequence[str]
) -> None:
    add = results.add  # type: ignore[attr-defined]
    for outcome, reference in zip(outcomes, references, strict=True):
        if isinstance(outcome, KeysvcError):
            add(reference=reference, error=item_status(outcome))
        else:
            add(token=outcome.token, key_version=outcome.key_version, reference=reference)


def _detokenize_inputs(request: pb.DetokenizeRequest | pb.RetokenizeRequest) -> list[DetokenizeInput]:
    check_batch(len(request.items))
    shared = request.tweak
    return [DetokenizeInput(i.token, i.tweak or shared, i.key_version) for i in request.items]


class TokenizationServicer(tokenization_pb2_grpc.TokenizationServicer):  # type: ignore[misc]
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._redactors: dict[str, Redactor] = {}

    def Tokenize(self, request: pb.TokenizeRequest, context: grpc.ServicerContext) -> pb.TokenizeResponse:
        check_batch(len(request.items))
        shared = request.tweak
        items = [
            TokenizeInput(
                i.value, i.tweak or shared, i.ttl_seconds, dict(i.metadata) if i.metadata else NO_METADATA
            )
            for i in request.items
        ]
        response = pb.TokenizeResponse()
        _fill_tokens(
            response.results,
            self._tokenizer.tokenize(request.key, items),
            [i.reference for i in request.items],
        )
        return response

    def Detokenize(
        self, request: pb.DetokenizeRequest, context: grpc.ServicerContext
    ) -> pb.DetokenizeResponse:
        if not request.purpose.strip():
            raise InvalidArgument("detokenize requires a purpose")
        masked = request.reveal == pb.REVEAL_MASKED
        revealed = self._tokenizer.detokenize(request.key, _detokenize_inputs(request), masked=masked)
        response = pb.DetokenizeResponse()
        add = response.results.add
        for outcome, item in zip(revealed, request.items, strict=True):
            if isinstance(outcome, Revealed):
                add(
                    value=outcome.value,
                    key_version=outcome.key_version,
                    masked=outcome.masked,
                    reference=item.reference,
                )
            else:
                add(reference=item.reference, error=item_status(outcome))
        return response

    def Retokenize(
        self, request: pb.RetokenizeRequest, context: grpc.ServicerContext
    ) -> pb.RetokenizeResponse:
        response = pb.RetokenizeResponse()
        _fill_tokens(
            response.results,
            self._tokenizer.retokenize(request.key, _detokenize_inputs(request)),
            [i.reference for i in request.items],
        )
        return response

    def Redact(self, request: pb.RedactRequest, context: grpc.ServicerContext) -> pb.RedactResponse:
        check_batch(len(request.items))
        region = request.region or "US"
        redactor = self._redactors.get(region)
        if redactor is None:
            redactor = self._redactors[region] = Redactor(region=region)
        replace = self._replacer(request)
        response = pb.RedactResponse()
        for item in request.items:
            if len(item.text) + sum(len(w.text) + 1 for w in item.words) > MAX_REDACT_CHARS:
                response.results.add(
                    reference=item.reference, error=item_status(InvalidArgument("text too long to redact"))
                )
                continue
            try:
                if item.words:
                    words = [Word(w.text, w.start_ms, w.end_ms) for w in item.words]
                    done = redactor.redact_words(words, replace)
                    out_words = [
                        pb.Word(text=w.text, start_ms=w.start_ms or 0, end_ms=w.end_ms or 0)
                        for w in done.words
                    ]
                    spans = [
                        pb.Span(
                            kind=s.kind,
                            start=s.start,
                            end=s.end,
                            word_start=s.word_start,
                            word_end=s.word_end,
                            start_ms=s.start_ms or 0,
                            end_ms=s.end_ms or 0,
                        )
                        for s in done.spans
                    ]
                    response.results.add(
                        text=" ".join(w.text for w in done.words),
                        spans=spans,
                        words=out_words,
                        reference=item.reference,
                    )
                    continue
                else:
                    redacted = redactor.redact(item.text, replace)
                    text = redacted.text
                    spans = [pb.Span(kind=s.kind, start=s.start, end=s.end) for s in redacted.spans]
            except KeysvcError as exc:
                response.results.add(reference=item.reference, error=item_status(exc))
                continue
            response.results.add(text=text, spans=spans, reference=item.reference)
        return response

    def _replacer(self, request: pb.RedactRequest) -> Callable[[Span, str], str]:
        if request.style == pb.REDACTION_STYLE_MASK:
            return mask
        if request.style != pb.REDACTION_STYLE_TOKEN:
            return label
        keys = dict(request.token_keys)

        def tokenize(span: Span, value: str) -> str:
            key = keys.get(span.kind)
            if key is None:
                return label(span, value)
            (issued,) = self._tokenizer.tokenize(key, [TokenizeInput(value)])
            if isinstance(issued, KeysvcError):
                return label(span, value)
            return issued.token

        return tokenize
