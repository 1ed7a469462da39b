//! Failures as gRPC statuses: the codes Flight clients act on.

use http_api::ApiError;
use services::QueryError;
use tonic::Status;

/// A query failure: bad SQL is InvalidArgument, an unknown database
/// NotFound, a system table the caller may not read PermissionDenied.
pub(crate) fn from_query(e: QueryError) -> Status {
    match e {
        QueryError::DatabaseNotFound(_) => Status::not_found(e.to_string()),
        QueryError::Invalid(m) => Status::invalid_argument(m),
        QueryError::Forbidden(m) => Status::permission_denied(m),
        QueryError::Execution(_) => Status::internal(e.to_string()),
    }
}

/// An authentication or authorization failure of `http_api::auth`.
pub(crate) fn from_api(e: ApiError) -> Status {
    match e {
        ApiError::Unauthorized(_) => Status::unauthenticated(http_api::error::UNAUTHENTICATED),
        ApiError::MalformedAuth => Status::unauthenticated(e.to_string()),
        ApiError::Forbidden(m) => Status::permission_denied(m),
        ApiError::NotFound(m) => Status::not_found(m),
        ApiError::BadRequest(m) => Status::invalid_argument(m),
        ApiError::Unavailable(m) => Status::unavailable(m),
        other => Status::internal(other.to_string()),
    }
}

/// An Arrow failure while building a metadata result.
pub(crate) fn from_arrow(e: arrow::error::ArrowError) -> Status {
    Status::internal(format!("building the result: {e}"))
}
