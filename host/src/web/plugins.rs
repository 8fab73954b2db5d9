//! Step 1: choose a plugin and its configuration.
//!
//! Every loaded plugin is a card; folders that failed to load are listed with the reason.
//! Choosing one shows its configuration form (from its JSON Schema, see [`super::form`]),
//! validated on the server against the plugin's own schema. The user's saved defaults
//! per plugin are kept in the web state store.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use super::form::{self, ConfigForm, ConfigFormView};
use super::state_store::{Step, UserSettings};
use super::{PageMeta, Web, WebError, Wizard, go, is_htmx, render};
use crate::runtime::LoadedPlugin;

pub struct PluginCard {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub languages: String,
    pub abilities: Vec<&'static str>,
    pub selected: bool,
}

pub struct FailedCard {
    pub id: String,
    pub reason: String,
}

/// A queued or running job, so it can be found again from the start page.
pub struct ActiveJob {
    pub id: String,
    pub file_name: String,
    pub plugin: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "plugins.html")]
struct PluginsPage {
    page: PageMeta,
    plugins: Vec<PluginCard>,
    failed: Vec<FailedCard>,
    form: Option<ConfigForm>,
    active: Vec<ActiveJob>,
}

fn card(plugin: &LoadedPlugin, selected: Option<&str>) -> PluginCard {
    let meta = &plugin.meta;
    let caps = &meta.capabilities;
    let abilities = [
        (caps.segment_timestamps, "segment timestamps"),
        (caps.word_timestamps, "word timestamps"),
        (caps.language_detection, "language detection"),
        (caps.translation, "translation to English"),
    ]
    .into_iter()
    .filter_map(|(has, name)| has.then_some(name))
    .collect();
    PluginCard {
        id: meta.id.clone(),
        name: meta.name.clone(),
        version: meta.version.clone(),
        description: meta.description.clone(),
        languages: if meta.languages.is_empty() {
            "not stated".into()
        } else {
            meta.languages.join(", ")
        },
        abilities,
        selected: selected == Some(meta.id.as_str()),
    }
}

/// The form for `plugin` showing `values`.
fn config_form(
    plugin: &LoadedPlugin,
    values: &Map<String, Value>,
    errors: &BTreeMap<String, String>,
    general: Vec<String>,
    notice: Option<String>,
    settings: &UserSettings,
) -> ConfigForm {
    ConfigForm {
        plugin_id: plugin.meta.id.clone(),
        plugin_name: plugin.meta.name.clone(),
        fields: form::fields(&plugin.meta.config_schema, values, errors),
        form_error: (!general.is_empty()).then(|| general.join("; ")),
        notice,
        auto_save: settings.auto_save,
    }
}

pub async fn page(State(web): State<Arc<Web>>, mut wizard: Wizard) -> Result<Response, WebError> {
    let tenant = wizard.tenant().to_owned();
    let tenant = tenant.as_str();
    let settings = web.store.settings(tenant).await?;
    let chosen = wizard.plugin(&web);
    let selected = chosen.as_ref().map(|p| p.meta.id.clone());
    let form = chosen.map(|plugin| {
        config_form(
            &plugin,
            &wizard.state.config,
            &BTreeMap::new(),
            Vec::new(),
            None,
            &settings,
        )
    });
    if wizard.state.step != Step::Plugin {
        wizard.state.step = Step::Plugin;
        wizard.save(&web).await?;
    }
    full_page(&web, tenant, selected.as_deref(), form).await
}

/// The whole plugin page around `form`.
async fn full_page(
    web: &Web,
    tenant: &str,
    selected: Option<&str>,
    form: Option<ConfigForm>,
) -> Result<Response, WebError> {
    let active = web
        .app
        .tracker
        .active(tenant)
        .await
        .into_iter()
        .map(|job| ActiveJob {
            id: job.id.to_string(),
            file_name: job.file_name,
            plugin: job.plugin.name,
            status: job.status.as_str(),
        })
        .collect();
    render(&PluginsPage {
        page: PageMeta::new("Choose a plugin", "new", 1),
        plugins: web
            .app
            .plugins
            .plugins_of(crate::runtime::PluginKind::Transcriber)
            .iter()
            .filter(|p| web.app.plugin_allowed(tenant, &p.meta.id))
            .map(|p| card(p, selected))
            .collect(),
        failed: web
            .app
            .plugins
            .failures()
            .iter()
            .map(|f| FailedCard {
                id: f.id.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
        form,
        active,
    })
}

#[derive(serde::Deserialize)]
pub struct SelectForm {
    plugin: String,
}

/// A loaded plugin the tenant may use; one off its allow-list is "not found".
fn allowed_plugin(web: &Web, tenant: &str, id: &str) -> Result<Arc<LoadedPlugin>, WebError> {
    web.plugin_for(tenant, id)
        .ok_or_else(|| WebError::not_found("plugin"))
}

/// Chooses a plugin; its configuration starts from the user's saved defaults.
pub async fn select(
    State(web): State<Arc<Web>>,
    mut wizard: Wizard,
    Form(choice): Form<SelectForm>,
) -> Result<Response, WebError> {
    let plugin = allowed_plugin(&web, wizard.tenant(), &choice.plugin)?;
    let settings = web.store.settings(wizard.tenant()).await?;
    wizard.state.plugin = Some(plugin.meta.id.clone());
    wizard.state.config = settings
        .defaults
        .get(&plugin.meta.id)
        .cloned()
        .unwrap_or_default();
    wizard.state.step = Step::Plugin;
    wizard.save(&web).await?;
    // HTMX follows the redirect and swaps in the new page's <main> (a same-page
    // HX-Redirect with a fragment would not reload).
    Ok(Redirect::to("/plugins#config").into_response())
}

/// Validates the configuration form; then saves defaults, resets them, or moves on.
pub async fn config(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    mut wizard: Wizard,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let plugin_id = field("plugin").unwrap_or_default();
    let plugin = allowed_plugin(&web, wizard.tenant(), plugin_id)?;
    let action = field("action").unwrap_or("next");
    let tenant = wizard.tenant().to_owned();
    let tenant = tenant.as_str();
    let mut settings = web.store.settings(tenant).await?;
    wizard.state.plugin = Some(plugin.meta.id.clone());

    if action == "reset_defaults" {
        settings.defaults.remove(&plugin.meta.id);
        web.store.save_settings(tenant, &settings).await?;
        wizard.state.config = Map::new();
        wizard.save(&web).await?;
        let form = config_form(
            &plugin,
            &Map::new(),
            &BTreeMap::new(),
            Vec::new(),
            Some("Reset to the plugin's defaults.".into()),
            &settings,
        );
        return respond_form(&web, &headers, tenant, form).await;
    }

    let (config, mut errors) = form::parse(&plugin.meta.config_schema, &pairs);
    let mut general = Vec::new();
    if errors.is_empty()
        && let Err(problems) = plugin.resolve_config(&Value::Object(config.clone()))
    {
        let (by_field, whole) = form::problems_by_field(&problems);
        errors = by_field;
        general = whole;
    }
    if !errors.is_empty() || !general.is_empty() {
        let form = config_form(&plugin, &config, &errors, general, None, &settings);
        return respond_form(&web, &headers, tenant, form).await;
    }

    wizard.state.config = config.clone();
    let save = action == "save_defaults" || (action == "next" && settings.auto_save);
    if save {
        settings
            .defaults
            .insert(plugin.meta.id.clone(), config.clone());
        web.store.save_settings(tenant, &settings).await?;
    }
    if action == "next" {
        wizard.state.step = Step::File;
        wizard.save(&web).await?;
        return Ok(go(&headers, "/file"));
    }
    wizard.save(&web).await?;
    let form = config_form(
        &plugin,
        &config,
        &BTreeMap::new(),
        Vec::new(),
        Some("Saved as your defaults.".into()),
        &settings,
    );
    respond_form(&web, &headers, tenant, form).await
}

/// The form alone for HTMX; without HTMX, the whole page around it.
async fn respond_form(
    web: &Web,
    headers: &HeaderMap,
    tenant: &str,
    form: ConfigForm,
) -> Result<Response, WebError> {
    if is_htmx(headers) {
        return render(&ConfigFormView { form });
    }
    let selected = form.plugin_id.clone();
    full_page(web, tenant, Some(&selected), Some(form)).await
}
