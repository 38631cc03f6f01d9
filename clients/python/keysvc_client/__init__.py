"""keysvc-client: field encryption, tokenization and redaction through keysvc.

from keysvc_client import KeyServiceClient
with KeyServiceClient("127.0.0.1:50051", token=TOKEN) as c:
    cts = c.encrypt("customer-pii", [b"123-45-6789"], context={"field": "ssn"})
    pts = c.decrypt(cts, context={"field": "ssn"})
"""

from keysvc_client._admin import AdminClient
from keysvc_client._client import DataKey, KeyServiceClient, RedactedSpan, Redaction, Token
from keysvc_client._errors import (
    AlreadyExistsError,
    BatchError,
    DeadlineExceededError,
    DecryptionError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    ItemResult,
    KeysvcError,
    KeyVersionDestroyedError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StreamDecryptionError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from keysvc_client.records import (
    CiphertextFormatError,
    Drop,
    Encrypt,
    FieldError,
    Mask,
    RecordBatchError,
    Schema,
    Tokenize,
    protect_record,
    protect_records,
    reveal_record,
    reveal_records,
)

__all__ = [
    "AdminClient",
    "AlreadyExistsError",
    "BatchError",
    "CiphertextFormatError",
    "DataKey",
    "DeadlineExceededError",
    "DecryptionError",
    "Drop",
    "Encrypt",
    "FailedPreconditionError",
    "FieldError",
    "InternalError",
    "InvalidArgumentError",
    "ItemResult",
    "KeyServiceClient",
    "KeyVersionDestroyedError",
    "KeysvcError",
    "Mask",
    "NotFoundError",
    "PermissionDeniedError",
    "RecordBatchError",
    "RedactedSpan",
    "Redaction",
    "ResourceExhaustedError",
    "Schema",
    "StreamDecryptionError",
    "Token",
    "Tokenize",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "protect_record",
    "protect_records",
    "reveal_record",
    "reveal_records",
]
