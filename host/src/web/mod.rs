//! The browser workflow: server-rendered pages (askama, HTML-escaped by default), HTMX for
//! partial updates, and a little JavaScript for uploads with progress, live job events
//! (SSE) and playback. Every asset is embedded in the binary.
//!
//! The steps are pages of their own — plugin, file, confirm, progress, results — plus
//! history and settings. Where a browser is in the workflow is kept on the server per
//! browser session ([`session`], [`state_store`]), so a reload or a restart lands on the
//! same step, and `/` leads back to a running job. A session belongs to one login and
//! tenant; what it holds is checked against that tenant again where it is used.
//!
//! Like the JSON API, the pages read the tracker and storage and create jobs through
//! [`crate::app::submit::submit_upload`], so both front ends enforce the same validation,
//! limits and queue. Text from plugins and users is only ever shown through the
//! templates' escaping (or `textContent` in the script).

mod assets;
mod confirm;
mod file;
pub mod form;
mod history;
mod janitor;
mod login;
pub mod media;
pub mod media_type;
mod plugins;
mod progress;
mod results;
pub mod session;
mod settings;
pub mod state_store;
mod text;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use crate::app::{ApiError, AppState};
use session::Session;
use state_store::{ChosenFile, FileSource, StateStore, StateStoreError, Step, WizardState};

/// What the pages share: the app's state plus the web layer's own store.
pub struct Web {
    pub app: Arc<AppState>,
    pub store: StateStore,
}

impl Web {
    /// A loaded transcription plugin `tenant` may use: one off its allow-list does not
    /// exist for it, as in the API (nor does a diarizer, which is no job's first stage).
    pub fn plugin_for(&self, tenant: &str, id: &str) -> Option<Arc<crate::runtime::LoadedPlugin>> {
        self.app
            .plugin_allowed(tenant, id)
            .then(|| self.app.plugins.get(id))
            .flatten()
            .filter(|p| p.meta.kind == crate::runtime::PluginKind::Transcriber)
    }
}

/// The browser's routes, to be merged into the app's router ([`crate::app::app`]).
pub fn router(state: Arc<AppState>) -> Router {
    // Room for the multipart framing around the largest allowed file.
    let body_limit = usize::try_from(state.config.limits.upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    // The web layer keeps its own tables beside the results: in the result store's
    // SQLite file, or in the database the nodes share.
    let store = match &state.database {
        Some(database) => StateStore::postgres(database.clone()),
        None => StateStore::new(state.config.data_dir.join("sandscribe.db")),
    };
    let web = Arc::new(Web { app: state, store });
    janitor::spawn(web.clone());
    let pages = Router::new()
        .route("/", get(start))
        .route("/plugins", get(plugins::page))
        .route("/plugins/select", post(plugins::select))
        .route("/plugins/config", post(plugins::config))
        .route("/file", get(file::page))
        // Only the upload may be large; every other form keeps axum's small default.
        .route(
            "/file/upload",
            post(file::upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/file/media",
            get(file::media_list).post(file::choose_media),
        )
        .route("/media/{folder}/{*path}", get(file::preview))
        .route("/confirm", get(confirm::page))
        .route("/start", post(confirm::start))
        .route("/jobs/{id}", get(progress::page))
        .route("/jobs/{id}/cancel", post(progress::cancel))
        .route("/results/{id}", get(results::page))
        .route("/results/{id}/audio", get(results::audio))
        .route("/results/{id}/speakers", post(results::rename_speakers))
        .route("/another", post(results::another))
        .route("/history", get(history::page))
        .route("/history/{id}/delete", post(history::delete))
        .route("/settings", get(settings::page).post(settings::save))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            session::ensure,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            login::require_login,
        ))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .layer(axum::middleware::map_response(page_headers))
        .with_state(web);
    // Every post is checked to come from these pages by the app-wide request guard
    // (`crate::app::guard`), which covers the JSON API the pages' scripts call too.
    Router::new().merge(pages).merge(assets::router())
}

/// The policy of a page: its own scripts, styles and media only. A second line of
/// defence behind the escaping; anything that is not a page gets the sandbox of
/// [`crate::app::response_headers`] instead.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Pages are per-session and change with every step: never cached. HTML answers (the
/// pages and their error pages) get the page policy; the audio this router also serves
/// keeps the sandbox.
async fn page_headers(mut response: Response) -> Response {
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if is_page {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Shared by every page template: title, navigation, the step indicator.
pub struct PageMeta {
    pub title: String,
    /// "new", "history" or "settings".
    pub nav: &'static str,
    /// 1..=5 on the workflow's steps, 0 elsewhere.
    pub step: u8,
    pub asset_version: &'static str,
    /// The tenant the browser is logged in as, for the header (`None` in single-user mode).
    pub login: Option<String>,
}

impl PageMeta {
    pub fn new(title: impl Into<String>, nav: &'static str, step: u8) -> Self {
        Self {
            title: title.into(),
            nav,
            step,
            asset_version: assets::version(),
            login: login::logged_in_as(),
        }
    }

    /// The names of the steps, for the indicator.
    pub fn steps(&self) -> [(u8, &'static str); 5] {
        [
            (1, "Plugin"),
            (2, "File"),
            (3, "Confirm"),
            (4, "Progress"),
            (5, "Results"),
        ]
    }
}

/// An error shown as a page: what went wrong and a way back.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("That {what} was not found."))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: PageMeta,
    status: u16,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            page: PageMeta::new("Something went wrong", "", 0),
            status: self.status.as_u16(),
            message: self.message,
        };
        match page.render() {
            Ok(body) => (self.status, Html(body)).into_response(),
            Err(_) => (self.status, "something went wrong").into_response(),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, text::sentence(&error.message))
    }
}

impl From<StateStoreError> for WebError {
    fn from(error: StateStoreError) -> Self {
        tracing::error!(error = %error, "web state store");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl From<askama::Error> for WebError {
    fn from(error: askama::Error) -> Self {
        tracing::error!(error = %error, "template");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The page could not be rendered: {error}"),
        )
    }
}

/// Renders a template as an HTML response.
pub fn render(template: &impl Template) -> Result<Response, WebError> {
    Ok(Html(template.render()?).into_response())
}

/// Whether HTMX made the request (it then wants a fragment, or `HX-Redirect`).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Goes to `to`: a full navigation for HTMX requests, else a 303.
pub fn go(headers: &HeaderMap, to: &str) -> Response {
    if is_htmx(headers)
        && let Ok(value) = HeaderValue::from_str(to)
    {
        let mut response = StatusCode::OK.into_response();
        response.headers_mut().insert("hx-redirect", value);
        return response;
    }
    Redirect::to(to).into_response()
}

/// The request's browser session and its stored state.
pub struct Wizard {
    pub session_id: uuid::Uuid,
    /// The login the session belongs to ([`crate::auth::Credential::owner`]).
    pub owner: String,
    pub state: WizardState,
    /// Who the browser is logged in as (the single user without API keys).
    pub caller: crate::auth::Caller,
}

impl Wizard {
    /// The tenant whose plugins settings, jobs and results this browser sees.
    pub fn tenant(&self) -> &str {
        &self.caller.tenant
    }

    pub async fn save(&self, web: &Web) -> Result<(), WebError> {
        Ok(web
            .store
            .save_session(self.session_id, &self.owner, &self.state)
            .await?)
    }

    /// The plugin this session chose, while the tenant may still use it.
    pub fn plugin(&self, web: &Web) -> Option<Arc<crate::runtime::LoadedPlugin>> {
        web.plugin_for(self.tenant(), self.state.plugin.as_deref()?)
    }

    /// The file this session chose, if it is still this tenant's to use: a staged upload
    /// must lie in the tenant's own staging folder.
    pub fn file(&self, web: &Web) -> Option<&ChosenFile> {
        self.state.file.as_ref().filter(|file| match &file.source {
            FileSource::Staged { path } => path.starts_with(file::staged_dir(web, self.tenant())),
            FileSource::Media { .. } => true,
        })
    }
}

impl FromRequestParts<Arc<Web>> for Wizard {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _web: &Arc<Web>) -> Result<Self, WebError> {
        // `login::require_login` found the caller and `session::ensure` the session of
        // every page.
        let missing = || WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "no session");
        let Session { id, owner, state } =
            parts.extensions.remove::<Session>().ok_or_else(missing)?;
        let caller = parts
            .extensions
            .get::<crate::auth::Authenticated>()
            .map(|a| a.caller.clone())
            .ok_or_else(missing)?;
        Ok(Self {
            session_id: id,
            owner,
            state,
            caller,
        })
    }
}

/// `/`: back to where this browser was — its running job first.
async fn start(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    wizard: Wizard,
) -> Response {
    let job = wizard.state.job;
    if let Some(id) = job
        && let Ok(Some(snapshot)) = web.app.tracker.lookup(wizard.tenant(), id).await
        && !snapshot.status.is_finished()
    {
        return Redirect::to(&format!("/jobs/{id}")).into_response();
    }
    let to = match (wizard.state.step, job) {
        (Step::File, _) => "/file".to_owned(),
        (Step::Confirm, _) => "/confirm".to_owned(),
        (Step::Progress, Some(id)) => format!("/jobs/{id}"),
        (Step::Results, Some(id)) => format!("/results/{id}"),
        _ => "/plugins".to_owned(),
    };
    Redirect::to(&to).into_response()
}

/// A job or result id from the path; anything malformed is simply not found.
pub fn parse_id(id: &str, what: &str) -> Result<Uuid, WebError> {
    crate::app::extract::parse_id(id).ok_or_else(|| WebError::not_found(what))
}
