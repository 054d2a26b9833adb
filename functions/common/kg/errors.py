"""The few domain errors; each edge (command line, API, Step Functions) maps them once."""


class KgError(Exception):
    """Base of the errors a user can act on."""


class InvalidInput(KgError):
    """The request or document is unusable; nothing was written. CLI exit 2, API 400."""


class NotFound(KgError):
    """A job, document or source that does not exist. API 404."""


class StoreError(KgError):
    """The graph database cannot be used as it is."""


class StoreUnavailable(StoreError):
    """The graph database cannot be reached or refused us."""


class StoreMismatch(StoreError):
    """The graph store was created for another embedding model or dimension."""


class SchemaOutdated(StoreError):
    """The graph database lacks migrations this code needs; `kg db migrate` applies them."""


class ProviderUnavailable(KgError):
    """An extraction or embedding provider cannot be used (missing package, dead endpoint)."""


class ExtractionFailed(KgError):
    """One extraction type failed for one chunk after its retries."""
