//! Errors in OpenAI's envelope: `{"error": {"message", "type", "param", "code"}}`.
//!
//! The status and the code come from the shared [`ApiError`] (so a 413, 415 or 429 means
//! the same on both APIs); this module only adds what OpenAI's clients read besides the
//! status: the `type`, and the `param` a bad request is about.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::ApiError;
use crate::app::upload::UploadError;

/// An [`ApiError`] plus the form parameter it concerns.
#[derive(Debug, Clone)]
pub struct OpenAiError {
    pub error: ApiError,
    /// The request parameter that is wrong (`model`, `language`, `file`, ...).
    pub param: Option<String>,
    /// Whether OpenAI's clients may retry the request by themselves (they retry 429 and
    /// 5xx unless told otherwise with `x-should-retry`).
    pub retry: bool,
}

impl OpenAiError {
    /// A 400 about one parameter.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self::from(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            message,
        ))
        .param(param)
    }

    /// Names the parameter the error is about.
    pub fn param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// Tells clients not to retry: the same request would fail the same way.
    pub fn final_answer(mut self) -> Self {
        self.retry = false;
        self
    }

    /// The OpenAI error `type` for a status.
    fn kind(&self) -> &'static str {
        if self.error.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        }
    }

    /// OpenAI's code where it has its own name for ours.
    fn code(&self) -> &'static str {
        match self.error.code {
            "unknown_plugin" => "model_not_found",
            code => code,
        }
    }

    /// The JSON body, also sent as a stream's last event when the job fails mid-stream.
    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            error: Body {
                message: &self.error.message,
                kind: self.kind(),
                param: self.param.as_deref(),
                code: self.code(),
            },
        }
    }

    /// [`OpenAiError::envelope`] as JSON text.
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.envelope()).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl From<UploadError> for OpenAiError {
    /// A form field that is too long (or not text) is that parameter's problem.
    fn from(error: UploadError) -> Self {
        let field = error.field().map(str::to_owned);
        let mut error = Self::from(ApiError::from(error));
        if field.is_some() {
            error.param = field;
        }
        error
    }
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        // Problems with the upload itself are about the `file` parameter.
        let param = matches!(
            error.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE
        )
        .then(|| "file".to_owned());
        Self {
            error,
            param,
            retry: true,
        }
    }
}

/// The JSON body of every error of `/v1`, as OpenAI's clients read it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiErrorEnvelope)]
pub struct Envelope<'a> {
    #[schema(inline)]
    error: Body<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiErrorBody)]
pub struct Body<'a> {
    message: &'a str,
    /// `invalid_request_error` for a 4xx, `server_error` for a 5xx.
    #[serde(rename = "type")]
    kind: &'a str,
    /// The request parameter the error is about (`model`, `file`, ...), or null.
    #[schema(required = true)]
    param: Option<&'a str>,
    /// Sandscribe's stable code (`model_not_found` where OpenAI has its own name).
    code: &'a str,
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.error.status, axum::Json(self.envelope())).into_response();
        if let Some(seconds) = self.error.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if !self.retry {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl OpenAiError {
        fn body(&self) -> serde_json::Value {
            serde_json::from_str(&self.body_json()).unwrap()
        }
    }

    #[test]
    fn envelope_has_message_type_param_and_code_in_openai_order() {
        let error = OpenAiError::bad_param("language", "no such language");
        assert_eq!(
            error.body_json(),
            r#"{"error":{"message":"no such language","type":"invalid_request_error","param":"language","code":"invalid_parameter"}}"#
        );
        assert_eq!(
            error.body(),
            serde_json::json!({"error": {
                "message": "no such language",
                "type": "invalid_request_error",
                "param": "language",
                "code": "invalid_parameter",
            }})
        );
    }

    #[test]
    fn shared_errors_keep_their_status_and_name_the_file_when_it_is_the_problem() {
        let error = OpenAiError::from(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "undecodable_audio",
            "not audio",
        ));
        assert_eq!(error.error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(error.body()["error"]["param"], "file");
        let error = OpenAiError::from(ApiError::unknown_plugin("whisper-1"));
        assert_eq!(error.error.status, StatusCode::NOT_FOUND);
        assert_eq!(error.body()["error"]["code"], "model_not_found");
        assert_eq!(error.body()["error"]["param"], serde_json::Value::Null);
        let error = OpenAiError::from(ApiError::internal("boom"));
        assert_eq!(error.body()["error"]["type"], "server_error");
    }
}
