//! The one error every service API returns, and the one table that says
//! what each kind of error is over HTTP (RFC 9110 status, answered as an
//! RFC 9457 problem by the gateway) and over gRPC (status code,
//! `google.rpc.Code`), side by side.
//!
//! A [`ServiceError`] crosses a gRPC hop unchanged: [`ServiceError::to_status`]
//! puts the kind's code and the detail in the status and everything else
//! (problem code, field errors, retry delay, extension members) as JSON in
//! the status details; [`ServiceError::from_status`] reads it back. A
//! status from elsewhere (a proxy, the transport) maps by its code.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

/// What kind of failure, independent of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Fields of the input are invalid; [`ServiceError::fields`] says which.
    Validation,
    /// The request is wrong in a way no field names.
    BadRequest,
    /// Missing, wrong, expired or revoked credentials.
    Unauthenticated,
    /// Authenticated, but not allowed.
    Forbidden,
    /// No such resource for this tenant.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// Too many requests or attempts; retry after the delay.
    Throttled,
    /// A backend or a peer is unavailable; retry later.
    Unavailable,
    /// A bug or an unexpected answer; the detail is logged, never shown.
    Internal,
}

/// One row of the table: a kind, its HTTP status, its gRPC code, and the
/// problem code used when the error names none.
#[derive(Debug, Clone, Copy)]
pub struct ErrorMapping {
    pub kind: ErrorKind,
    pub http: StatusCode,
    pub grpc: Code,
    pub default_code: &'static str,
}

/// Every kind, its HTTP status and its gRPC code (gRPC's own guidance for
/// HTTP mapping, `google.rpc.Code`, picks the pairs).
pub const ERROR_TABLE: &[ErrorMapping] = &[
    row(
        ErrorKind::Validation,
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "validation_failed",
    ),
    row(
        ErrorKind::BadRequest,
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "bad_request",
    ),
    row(
        ErrorKind::Unauthenticated,
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        "unauthorized",
    ),
    row(
        ErrorKind::Forbidden,
        StatusCode::FORBIDDEN,
        Code::PermissionDenied,
        "permission_denied",
    ),
    row(
        ErrorKind::NotFound,
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "not_found",
    ),
    row(
        ErrorKind::Conflict,
        StatusCode::CONFLICT,
        Code::FailedPrecondition,
        "conflict",
    ),
    row(
        ErrorKind::Throttled,
        StatusCode::TOO_MANY_REQUESTS,
        Code::ResourceExhausted,
        "rate_limited",
    ),
    row(
        ErrorKind::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Unavailable,
        "unavailable",
    ),
    row(
        ErrorKind::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "internal",
    ),
];

const fn row(
    kind: ErrorKind,
    http: StatusCode,
    grpc: Code,
    default_code: &'static str,
) -> ErrorMapping {
    ErrorMapping {
        kind,
        http,
        grpc,
        default_code,
    }
}

impl ErrorKind {
    /// This kind's row of [`ERROR_TABLE`].
    pub fn mapping(self) -> &'static ErrorMapping {
        ERROR_TABLE
            .iter()
            .find(|mapping| mapping.kind == self)
            .expect("every kind has a row in ERROR_TABLE")
    }

    pub fn http_status(self) -> StatusCode {
        self.mapping().http
    }

    pub fn grpc_code(self) -> Code {
        self.mapping().grpc
    }

    /// The kind of a gRPC status that carries no [`ServiceError`] (from a
    /// proxy or the transport): the table read backwards, with the codes
    /// the table does not use folded into the nearest kind.
    pub fn of_grpc_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::BadRequest,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::Forbidden,
            Code::NotFound => Self::NotFound,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => Self::Conflict,
            Code::ResourceExhausted => Self::Throttled,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                Self::Internal
            }
        }
    }
}

/// One invalid field of a request: `field` is its path in the input
/// (`contact.email`, `items[2].quantity`, `limit`). The one field-error
/// type of every service and of the public API's problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A service's failure, as every service API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    /// The stable problem code clients switch on (`email_taken`,
    /// `seat_limit_reached`, …).
    pub code: Cow<'static, str>,
    /// What went wrong, for a person. For [`ErrorKind::Internal`] and
    /// [`ErrorKind::Unavailable`] it is for the log only.
    pub detail: String,
    pub fields: Vec<FieldError>,
    pub retry_after: Option<Duration>,
    /// Extension members of the problem (`current_state`, …).
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ServiceError {}

/// What travels in a status's details besides its code and message.
#[derive(Serialize, Deserialize)]
struct WireDetails {
    kind: ErrorKind,
    code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    extensions: serde_json::Map<String, serde_json::Value>,
}

impl ServiceError {
    /// An error of `kind` with the kind's default problem code.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            code: Cow::Borrowed(kind.mapping().default_code),
            detail: detail.into(),
            fields: Vec::new(),
            retry_after: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// Invalid fields; the detail names them.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let detail = match fields.as_slice() {
            [] => "the request is invalid".to_owned(),
            [one] => format!("invalid field `{}`: {}", one.field, one.message),
            many => format!(
                "invalid fields: {}",
                many.iter()
                    .map(|error| format!("`{}`", error.field))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Self {
            fields,
            ..Self::new(ErrorKind::Validation, detail)
        }
    }

    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, detail)
    }

    pub fn forbidden(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, detail).with_code(code)
    }

    /// `what` (a noun: `user`, `queue`) was not found.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail).with_code(code)
    }

    pub fn throttled(retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                ErrorKind::Throttled,
                format!("too many attempts; retry in {} s", seconds.max(1)),
            )
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }

    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// The gRPC status carrying this error. Internal and unavailable
    /// details are logged here and replaced by a generic message: they may
    /// name hosts, tables or queries.
    pub fn to_status(&self) -> Status {
        let message = match self.kind {
            ErrorKind::Internal => {
                tracing::error!(error = %self.detail, "internal error");
                "internal error".to_owned()
            }
            ErrorKind::Unavailable => {
                tracing::warn!(error = %self.detail, "backend unavailable");
                "a backend is unavailable; retry later".to_owned()
            }
            _ => self.detail.clone(),
        };
        let details = WireDetails {
            kind: self.kind,
            code: self.code.clone().into_owned(),
            fields: self.fields.clone(),
            retry_after_ms: self
                .retry_after
                .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            extensions: self.extensions.clone(),
        };
        match serde_json::to_vec(&details) {
            Ok(details) => Status::with_details(self.kind.grpc_code(), message, details.into()),
            Err(_) => Status::new(self.kind.grpc_code(), message),
        }
    }

    /// The error a status carries: exactly as sent by [`Self::to_status`],
    /// else the kind of its code with its message as detail.
    pub fn from_status(status: &Status) -> Self {
        if let Ok(details) = serde_json::from_slice::<WireDetails>(status.details()) {
            return Self {
                kind: details.kind,
                code: Cow::Owned(details.code),
                detail: status.message().to_owned(),
                fields: details.fields,
                retry_after: details.retry_after_ms.map(Duration::from_millis),
                extensions: details.extensions,
            };
        }
        let kind = ErrorKind::of_grpc_code(status.code());
        let detail = match kind {
            ErrorKind::Unavailable => format!("peer unavailable: {}", status.message()),
            _ => status.message().to_owned(),
        };
        Self::new(kind, detail)
    }
}

impl From<Status> for ServiceError {
    fn from(status: Status) -> Self {
        Self::from_status(&status)
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_row() {
        let kinds = [
            ErrorKind::Validation,
            ErrorKind::BadRequest,
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Throttled,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        assert_eq!(kinds.len(), ERROR_TABLE.len());
        for kind in kinds {
            assert_eq!(
                ERROR_TABLE.iter().filter(|row| row.kind == kind).count(),
                1,
                "{kind:?}"
            );
            // A status without details comes back as the same kind, except
            // that validation and bad request share a code.
            let back = ErrorKind::of_grpc_code(kind.grpc_code());
            match kind {
                ErrorKind::Validation => assert_eq!(back, ErrorKind::BadRequest),
                _ => assert_eq!(back, kind),
            }
        }
    }

    #[test]
    fn an_error_crosses_a_grpc_hop_unchanged() {
        let errors = [
            ServiceError::validation(vec![
                FieldError::new("email", "must be an email address"),
                FieldError::new("roles[0]", "unknown role `boss`"),
            ]),
            ServiceError::conflict("seat_limit_reached", "all 5 seats are taken"),
            ServiceError::forbidden("client_scope", "not your client"),
            ServiceError::not_found("user"),
            ServiceError::throttled(Duration::from_millis(1500)),
            ServiceError::conflict("illegal_state", "the agent is offline")
                .with_extension("current_state", serde_json::json!({"state": "offline"})),
            ServiceError::unauthenticated("token expired"),
        ];
        for error in errors {
            let back = ServiceError::from_status(&error.to_status());
            assert_eq!(back, error);
        }
    }

    #[test]
    fn internal_and_unavailable_details_stay_on_the_server() {
        let status = ServiceError::internal("relation \"user\" does not exist").to_status();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        let back = ServiceError::from_status(&status);
        assert_eq!(back.kind, ErrorKind::Internal);
        assert!(!back.detail.contains("relation"));
        let status = ServiceError::unavailable("redis://10.0.0.3 refused").to_status();
        assert!(!status.message().contains("10.0.0.3"));
    }

    #[test]
    fn a_foreign_status_maps_by_its_code() {
        let back = ServiceError::from_status(&Status::unavailable("connection refused"));
        assert_eq!(back.kind, ErrorKind::Unavailable);
        assert_eq!(back.code, "unavailable");
        let back = ServiceError::from_status(&Status::deadline_exceeded("slow"));
        assert_eq!(back.kind, ErrorKind::Unavailable);
        let back = ServiceError::from_status(&Status::unimplemented("no such method"));
        assert_eq!(back.kind, ErrorKind::Internal);
    }

    #[test]
    fn validation_names_its_fields() {
        assert_eq!(
            ServiceError::field("limit", "at most 200").detail,
            "invalid field `limit`: at most 200"
        );
        let many =
            ServiceError::validation(vec![FieldError::new("a", "x"), FieldError::new("b", "y")]);
        assert_eq!(many.detail, "invalid fields: `a`, `b`");
        assert_eq!(many.kind.http_status(), StatusCode::BAD_REQUEST);
        assert_eq!(many.kind.grpc_code(), Code::InvalidArgument);
    }
}
