"""Domain errors, each knowing its HTTP status, and the problem+json body every refusal is."""


class ServiceError(Exception):
    """Something the service refuses, with the HTTP status that says why."""

    status = 500
    title = "Internal Server Error"
    headers = None  # response headers the refusal carries (Retry-After, ...)

    def __init__(self, detail, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(ServiceError):
    """A request that parsed but cannot be served (bad points, single-class data, ...)."""

    status = 422
    title = "Invalid Input"

    def __init__(self, detail, field=None):
        errors = [{"loc": list(field) if field else [], "msg": detail}]
        super().__init__(detail, errors=errors)


class LimitExceeded(ServiceError):
    """A request over one of the configured limits; names the limit."""

    status = 422
    title = "Limit Exceeded"

    def __init__(self, limit, value, maximum, field=None):
        super().__init__(
            f"{limit} is {value}, over the limit of {maximum} (setting NNSERVE_{limit.upper()})",
            limit=limit,
            maximum=maximum,
            errors=[{"loc": list(field or [limit]), "msg": f"at most {maximum}"}],
        )


class InvalidName(InvalidInput):
    title = "Invalid Name"

    def __init__(self, detail):
        super().__init__(detail, field=("name",))


class ModelNotFound(ServiceError):
    status = 404
    title = "Model Not Found"

    def __init__(self, name, version=None):
        which = f"model {name!r}" if version is None else f"model {name!r} version {version}"
        super().__init__(f"{which} not found")
        self.version = version  # the version it names, None for the model


class AliasNotFound(ServiceError):
    status = 404
    title = "Alias Not Found"

    def __init__(self, name, alias):
        super().__init__(f"model {name!r} has no alias {alias!r}")


class CorruptModel(ServiceError):
    """A stored version that fails validation: it is refused, never executed."""

    status = 409
    title = "Corrupt Model"


class InvalidModelFile(ServiceError):
    """An uploaded .npz that fails the same validation as a stored one."""

    status = 422
    title = "Invalid Model File"

    def __init__(self, detail, reason, field=()):
        super().__init__(detail, reason=reason,
                         errors=[{"loc": ["body", *field], "msg": reason}])


class StoreUnavailable(ServiceError):
    status = 503
    title = "Store Unavailable"


class StoreFull(ServiceError):
    status = 507
    title = "Insufficient Storage"


class JobNotFound(ServiceError):
    status = 404
    title = "Job Not Found"

    def __init__(self, job_id):
        super().__init__(f"training job {job_id!r} not found")


class SweepNotFound(ServiceError):
    status = 404
    title = "Sweep Not Found"

    def __init__(self, sweep_id):
        super().__init__(f"sweep {sweep_id!r} not found")


class JobFinished(ServiceError):
    status = 409
    title = "Job Already Finished"

    def __init__(self, detail, retry_after=None):
        super().__init__(detail)
        if retry_after is not None:
            self.headers = {"Retry-After": str(retry_after)}


class LeaseLost(ServiceError):
    """A job's save refused: the job is no longer running under the lease of the worker
    saving (reaped, claimed again elsewhere, or ended)."""

    status = 409
    title = "Lease Lost"

    def __init__(self, job_id):
        super().__init__(f"training job {job_id!r} no longer holds its lease: nothing saved")


class TooManyStreams(ServiceError):
    """Every event stream this worker may hold is open; try again after Retry-After."""

    status = 503
    title = "Too Many Streams"

    def __init__(self, maximum, retry_after):
        super().__init__(f"this worker has its {maximum} event streams open "
                         "(setting NNSERVE_MAX_STREAMS); retry later", limit="max_streams",
                         maximum=maximum)
        self.headers = {"Retry-After": str(retry_after)}


class NoSnapshot(ServiceError):
    """A training job has no weights to draw (yet): queued, not reported yet, ended before
    its first report, or a network over the size a snapshot holds."""

    status = 409
    title = "No Snapshot Yet"

    def __init__(self, job_id, reason, retry_after=None):
        super().__init__(f"training job {job_id!r} has no weights to draw: {reason}")
        if retry_after is not None:
            self.headers = {"Retry-After": str(retry_after)}


class UnsupportedEncoding(ServiceError):
    """A body sent compressed (Content-Encoding: gzip, ...): nnserve reads bodies as sent, so
    the body limit is the size that is parsed (RFC 9110 section 15.5.16)."""

    status = 415
    title = "Unsupported Media Type"
    headers = {"Accept-Encoding": "identity"}

    def __init__(self, coding):
        super().__init__(f"Content-Encoding {coding[:40]!r} is not accepted: send the body "
                         "uncompressed")


class UnsupportedTransferCoding(ServiceError):
    """A transfer coding before chunked (gzip, chunked): gunicorn passes the body on
    undecoded. The worker that reads whole requests refuses it from the head; this is the
    same refusal where stock gthread reads the request (TLS, the PROXY protocol)."""

    status = 501
    title = "Not Implemented"


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"


PROBLEM = "application/problem+json"


def problem_body(status, title, detail, **extra):
    """Return the RFC 9457 problem details every refusal answers (type, title, status, detail,
    and extra members such as errors)."""
    slug = title.lower().replace(" ", "-")
    return {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail,
            **extra}
