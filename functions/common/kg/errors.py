"""The few domain errors; each edge (command line, API, Step Functions) maps them once."""


class KgError(Exception):
    """Base of the errors a user can act on."""


class InvalidInput(KgError):
    """The request or document is unusable; nothing was written. CLI exit 2, API 400."""


class NotFound(KgError):
    """A job, document or source that does not exist. API 404."""


class StoreUnavailable(KgError):
    """The graph database cannot be reached or refused us."""


class StoreMismatch(KgError):
    """The graph store was created for another embedding model or dimension."""


class ProviderUnavailable(KgError):
    """An extraction or embedding provider cannot be used (missing package, dead endpoint)."""


class ExtractionFailed(KgError):
    """One extraction type failed for one chunk after its retries."""
