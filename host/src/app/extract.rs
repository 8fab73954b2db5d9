//! Request extractors whose rejections are the app's own error, so a malformed query
//! string or form gets the JSON envelope the API promises (`400 invalid_query`), not
//! axum's plain text; and the one way an id in a path is read.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::ApiError;

/// A job or result id from a path; anything malformed is simply not found, as an
/// unknown id is (a probe learns nothing from the difference).
pub fn parse_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}

/// `Query<T>`, answering a query string that does not fit `T` with `400 invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// `Multipart`, answering a body that is not a multipart form with `400 invalid_form`
/// (or the rejection's own status) in the JSON envelope.
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Multipart::from_request(request, state).await {
            Ok(form) => Ok(Self(form)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "invalid_form",
                rejection.body_text(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Page {
        #[allow(dead_code)]
        page: u32,
    }

    async fn page(ApiQuery(_): ApiQuery<Page>) -> &'static str {
        "ok"
    }

    async fn form(ApiMultipart(_): ApiMultipart) -> &'static str {
        "ok"
    }

    async fn answer(
        app: Router,
        request: axum::http::Request<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let response = app.oneshot(request).await.expect("a response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn a_bad_query_or_form_answers_in_the_json_envelope() {
        let app = Router::new().route("/p", get(page)).route("/f", post(form));
        let (status, body) = answer(
            app.clone(),
            axum::http::Request::get("/p?page=x")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_query", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("page")),
            "{body}"
        );
        let (status, body) = answer(
            app,
            axum::http::Request::post("/f")
                .header("content-type", "text/plain")
                .body(Body::from("hello"))
                .expect("request"),
        )
        .await;
        assert!(status.is_client_error(), "{status}");
        assert_eq!(body["error"]["code"], "invalid_form", "{body}");
    }

    #[test]
    fn ids_parse_one_way() {
        let id = Uuid::new_v4();
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id(" not-an-id "), None);
    }
}
