//! The OpenAPI 3.1 document at `GET /api/openapi.json`, for `/api/*`, `/v1/*`,
//! `/healthz` and `/metrics`.
//!
//! It is generated from the handlers' own types: every answer's schema is derived
//! (`utoipa::ToSchema`) from the type the handler serializes, and every operation is the
//! `#[utoipa::path]` above its handler, so renaming a field or a handler changes the
//! document or breaks the build. The forms, which handlers read field by field, are
//! described by the types below, which exist only for the document.
//!
//! What no single handler answers is added here, to every operation it concerns, from the
//! layers that answer it: the request guard's 403, the anonymous rate limit's 429, the
//! caller check's 401, the upload pacing's 408, the connection cap's 503, and the
//! security requirements (an API key or the browser's login cookie; in single-user mode
//! none is needed). The document is public, like `/healthz`: it describes the API and
//! reveals nothing of any tenant.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;

/// The JSON API's operations and the schemas they name (`/v1`'s are merged in by
/// [`document`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sandscribe",
        description = "A transcription server that runs speech engines as sandboxed \
            WebAssembly plugins: the JSON API (`/api`), the OpenAI-compatible API (`/v1`), \
            the health check and the metrics.\n\n\
            Errors of the JSON API are `{\"error\": {\"message\", \"code\"}}` \
            (`ApiErrorEnvelope`), those of `/v1` are OpenAI's \
            `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}` (`OpenAiErrorEnvelope`), \
            with the same status and code. An answer of 503 `busy` (too many open \
            connections) is sent before the request is read, so it is always an \
            `ApiErrorEnvelope`."
    ),
    paths(
        serve,
        crate::api::plugins::healthz,
        crate::api::plugins::metrics,
        crate::api::plugins::list,
        crate::api::plugins::get_one,
        crate::api::plugins::reload,
        crate::api::plugins::cluster,
        crate::api::jobs::submit,
        crate::api::jobs::list_active,
        crate::api::jobs::get_one,
        crate::api::jobs::deliveries,
        crate::api::events::stream,
        crate::api::jobs::cancel,
        crate::api::jobs::resubmit,
        crate::api::results::list,
        crate::api::results::get_one,
        crate::api::results::delete,
        crate::api::results::export,
        crate::api::results::rename_speakers,
    ),
    components(schemas(
        crate::jobs::JobEvent,
        crate::app::ApiErrorEnvelope<'static>,
        ExportFormatName
    )),
    tags(
        (name = "jobs", description = "Submitting jobs and following them"),
        (name = "results", description = "Stored results and their exports"),
        (name = "plugins", description = "The loaded speech engines"),
        (name = "admin", description = "For admin keys (and the metrics token)"),
        (name = "openai", description = "OpenAI's audio API: change only the base URL"),
        (name = "health", description = "For load balancers: never needs a key"),
    )
)]
struct ApiDoc;

/// The 200 of `GET /api/jobs/{id}/events`.
pub const EVENTS_DESCRIPTION: &str = "Server-Sent Events: the job's log after \
`Last-Event-ID` (or `?after=N`), then live events, ending after the terminal one. Each \
event's `id:` is its sequence number (resuming with it gives exactly what was missed), its \
`event:` is the `type` of its `data:`, a `JobEvent` as JSON: `status`, `progress`, `segment` \
and `log` while the job runs, then one of `done` (with the stored result), `failed`, \
`cancelled` or `timed_out`. Comment heartbeats keep an idle stream open.";

/// One event of `GET /api/jobs/{id}/events` as an SSE parser reads it (the schema of
/// each event, not of the stream).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes the stream for the document; never built"
)]
pub struct JobEventMessage {
    /// The event's sequence number: send the last one as `Last-Event-ID` to resume.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// The `type` of `data`.
    event: JobEventName,
    /// A `JobEvent` as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The SSE event names: [`crate::jobs::EventKind::name`].
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "describes the stream for the document; never built"
)]
pub enum JobEventName {
    Status,
    Progress,
    Segment,
    Log,
    Done,
    Failed,
    Cancelled,
    TimedOut,
}

/// `POST /api/jobs`: one `file` and the text fields. Other text fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the form for the document; never built")]
pub struct JobForm {
    /// The audio (or video) file; any container and codec that decodes.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// A plugin id (`GET /api/plugins` lists them).
    #[schema(pattern = "\\S")]
    plugin: String,
    /// A JSON object checked against the plugin's `config_schema` (defaults filled in);
    /// `{}` when left out or blank.
    #[schema(content_media_type = "application/json", required = false)]
    config: String,
    /// An http(s) URL that gets the job's terminal event, signed (Standard Webhooks);
    /// the tenant's default `callback_url` when left out.
    #[schema(format = "uri", required = false)]
    callback_url: String,
    /// A diarizer's plugin id (kind `diarizer` in `GET /api/plugins`): after the
    /// transcription it finds who spoke when and puts `speaker` on segments and words.
    /// If it fails, the job still completes with its transcript and the result's
    /// `diarization` says why.
    #[schema(required = false)]
    diarizer: String,
    /// How many speakers to expect: `auto` (the default), a number (`2`) or a range
    /// (`2-4`), within 1..=32. Only with `diarizer`.
    #[schema(pattern = "^(auto|[0-9]+(-[0-9]+)?)$", required = false)]
    speakers: String,
    /// A JSON object checked against the diarizer's `config_schema`. Only with `diarizer`.
    #[schema(content_media_type = "application/json", required = false)]
    diarizer_config: String,
}

/// `format` of an export (any case).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(
    dead_code,
    reason = "describes the query parameter for the document; never built"
)]
pub enum ExportFormatName {
    Txt,
    Srt,
    Vtt,
    Webvtt,
    Json,
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get, path = "/api/openapi.json", operation_id = "get_openapi", tag = "health",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
pub async fn serve(State(state): State<Arc<AppState>>) -> Json<utoipa::openapi::OpenApi> {
    Json(document(state.access.single_user()))
}

/// The whole document. In single-user mode every operation may also be called without
/// a credential (the server then listens on loopback only).
pub fn document(single_user: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api::openai::OpenAiDoc::openapi());
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `[[api_keys]]` (or, for `/metrics`, the \
                         `[metrics]` token). Without keys configured any key is accepted.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::LOGIN_COOKIE,
                "The browser's login (from `/login`), HttpOnly; named \
                 `__Host-sandscribe_login` where cookies are `Secure`.",
            ))),
        );
    }
    let mode = if single_user {
        "\n\nThis server is in single-user mode: no credential is needed."
    } else {
        "\n\nThis server has API keys: every operation but the health check and this \
         document needs one (or a browser login)."
    };
    if let Some(description) = doc.info.description.as_mut() {
        description.push_str(mode);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_answers(path, operation, single_user);
        }
    }
    doc
}

const BEARER: &str = "api_key";
const COOKIE: &str = "login_cookie";

/// Adds what the layers around every handler may answer, and who may call.
fn add_shared_answers(path: &str, operation: &mut Operation, single_user: bool) {
    let v1 = path.starts_with("/v1/");
    let health = path == "/healthz";
    let public = health || path == "/api/openapi.json";
    let envelope = if v1 {
        "OpenAiErrorEnvelope"
    } else {
        "ApiErrorEnvelope"
    };
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description, envelope));
    };
    if !health {
        add(
            "403",
            "The request names a host this server does not answer to (`foreign_host`), or \
             changes state from another site's page without a key (`foreign_origin`)",
        );
        add(
            "429",
            "Too many requests without a credential from this address (`rate_limited`, \
             with `Retry-After`; only when API keys are configured)",
        );
        add("500", "Something failed on the server (`internal`)");
    }
    if !public {
        add(
            "401",
            "No valid API key or login (`unauthorized`; `invalid_api_key` on `/v1`)",
        );
        add(
            "503",
            "The database is unavailable (`database_unavailable`, with `Retry-After`)",
        );
    }
    if operation.request_body.is_some() {
        add(
            "408",
            "The body stalled or arrived slower than the minimum rate (`upload_too_slow`)",
        );
        add("413", "The body is over its limit");
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter {
            never_null(parameter);
        }
    }
    let query = operation.parameters.iter().flatten().any(|p| {
        matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
    });
    if query {
        add(
            "400",
            "A query parameter that is not what it should be (`invalid_query`)",
        );
    }
    // Too many connections: answered before the request is read, so in the JSON API's
    // shape whatever the path.
    let busy = "too many open connections (`busy`, with `Retry-After`)";
    match operation.responses.responses.get_mut("503") {
        Some(RefOr::T(response)) if v1 => {
            *response = error_response_any(
                &format!("{}; or {busy}", response.description),
                &["OpenAiErrorEnvelope", "ApiErrorEnvelope"],
            );
        }
        Some(RefOr::T(response)) => {
            response.description = format!("{}; or {busy}", response.description)
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            operation
                .responses
                .responses
                .insert("503".to_owned(), error_response(busy, "ApiErrorEnvelope"));
        }
    }
    operation.security = Some(if public {
        Vec::new()
    } else {
        let mut allowed = vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(COOKIE, Vec::<String>::new()),
        ];
        if single_user {
            allowed.push(SecurityRequirement::default());
        }
        allowed
    });
}

/// A parameter's schema without `null`: HTTP has no null query value or header, only an
/// absent one, which `required: false` already says. (utoipa gives an `Option` field the
/// type `[T, "null"]`, and a client taking that literally sends `?after=null`.)
fn never_null(parameter: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    let is_null = |schema: &RefOr<Schema>| matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    match parameter.schema.as_mut() {
        Some(RefOr::T(Schema::Object(object))) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match <[Type; 1]>::try_from(kept) {
                    Ok([one]) => SchemaType::Type(one),
                    Err(many) => SchemaType::Array(many),
                };
            }
        }
        Some(RefOr::T(Schema::OneOf(one_of))) => {
            one_of.items.retain(|item| !is_null(item));
            if let [only] = one_of.items.as_slice() {
                parameter.schema = Some(only.clone());
            }
        }
        _ => {}
    }
}

/// An error answer in the named envelope.
pub(crate) fn error_response(description: &str, envelope: &str) -> RefOr<Response> {
    RefOr::T(error_response_any(description, &[envelope]))
}

/// An error answer in any of the named envelopes.
fn error_response_any(description: &str, envelopes: &[&str]) -> Response {
    let schema: RefOr<utoipa::openapi::Schema> = match envelopes {
        [one] => Ref::from_schema_name(*one).into(),
        many => RefOr::T(utoipa::openapi::Schema::AnyOf(
            many.iter()
                .fold(AnyOfBuilder::new(), |any, name| {
                    any.item(Ref::from_schema_name(*name))
                })
                .build(),
        )),
    };
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(method, path)` of every route the API's routers register, read from their
    /// source: axum cannot list a router's routes, and this keeps the document honest
    /// in both directions without starting a server.
    fn routed() -> BTreeSet<(String, String)> {
        let mut routes = BTreeSet::new();
        for source in [include_str!("mod.rs"), include_str!("openai/mod.rs")] {
            let source: String = source.split_whitespace().collect();
            for call in source.split(".route(\"").skip(1) {
                let Some((path, rest)) = call.split_once('"') else {
                    continue;
                };
                // `, get(handler).post(other))`: every method up to the route's end.
                let handlers = rest.split("))").next().unwrap_or_default();
                for method in ["get", "post", "put", "delete", "patch"] {
                    if handlers.contains(&format!(",{method}("))
                        || handlers.contains(&format!(".{method}("))
                    {
                        routes.insert((method.to_owned(), path.to_owned()));
                    }
                }
            }
        }
        routes
    }

    fn documented(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                if operation.is_some() {
                    operations.insert((method.to_owned(), path.clone()));
                }
            }
        }
        operations
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_routers_serve() {
        let routes = routed();
        assert!(
            routes.len() > 15,
            "the route reader found too little: {routes:?}"
        );
        assert_eq!(documented(&document(false)), routes);
    }

    #[test]
    fn every_operation_documents_its_errors_and_who_may_call() {
        let doc = document(false);
        for (path, item) in &doc.paths.paths {
            let operation = item
                .get
                .as_ref()
                .or(item.post.as_ref())
                .or(item.put.as_ref())
                .or(item.delete.as_ref())
                .expect("an operation");
            let statuses: Vec<&str> = operation
                .responses
                .responses
                .keys()
                .map(String::as_str)
                .collect();
            assert!(statuses.contains(&"503"), "{path}: {statuses:?}");
            let security = operation.security.as_ref().expect("security");
            if path == "/healthz" || path == "/api/openapi.json" {
                assert!(security.is_empty(), "{path} is public");
            } else {
                assert!(statuses.contains(&"401"), "{path}: {statuses:?}");
                assert!(statuses.contains(&"403"), "{path}: {statuses:?}");
                assert_eq!(security.len(), 2, "{path}: a key or the login cookie");
            }
        }
        let single_user = document(true);
        let jobs = single_user.paths.paths["/api/jobs"].get.as_ref();
        assert!(
            jobs.and_then(|o| o.security.as_ref())
                .is_some_and(|s| s.contains(&SecurityRequirement::default())),
            "single-user mode needs no credential"
        );
    }

    #[test]
    fn no_parameter_may_be_null() {
        let json = serde_json::to_string(&document(false)).expect("serializes");
        let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("an item") {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    assert!(
                        !parameter["schema"].to_string().contains("null"),
                        "{method} {path}: {parameter}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_of_v1_are_in_openais_envelope() {
        let json = serde_json::to_value(document(false)).expect("serializes");
        let not_found = &json["paths"]["/v1/models/{id}"]["get"]["responses"]["404"];
        assert_eq!(
            not_found["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/OpenAiErrorEnvelope"
        );
        let unauthorized = &json["paths"]["/api/jobs"]["get"]["responses"]["401"];
        assert_eq!(
            unauthorized["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ApiErrorEnvelope"
        );
    }
}
