//! Receiving uploads: multipart fields, the file streamed to disk under a size limit and
//! the text fields read in chunks under theirs.
//!
//! Shared by the JSON API, the OpenAI-compatible API and the browser's upload, so all
//! three enforce the same limits and keep the upload on disk until its job is finished.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::error::ApiError;
use crate::audio::{self, AudioScan, DecodeLimits};

/// An uploaded file on disk plus the form's text fields.
pub struct Upload {
    pub path: PathBuf,
    /// The file name the client gave (for display), or "upload".
    pub file_name: String,
    pub bytes: u64,
    pub fields: HashMap<String, Vec<String>>,
}

impl Upload {
    /// The first value of a text field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Removes the file (when the request is refused).
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the file if the request fails before a job takes it over.
pub struct UploadGuard {
    /// Present until [`UploadGuard::into_job_file`] hands the file on.
    upload: Option<Upload>,
}

impl UploadGuard {
    /// Guards a received file: it is deleted unless handed on.
    pub fn new(upload: Upload) -> Self {
        Self {
            upload: Some(upload),
        }
    }

    /// Hands the file on to whoever keeps it now (a queued job, the staging folder):
    /// it is no longer deleted when the guard goes.
    pub fn into_job_file(mut self) -> Upload {
        // Present by construction: only this method takes it, and it consumes the guard.
        self.upload
            .take()
            .expect("an upload guard holds its upload")
    }
}

impl std::ops::Deref for UploadGuard {
    type Target = Upload;

    fn deref(&self) -> &Upload {
        self.upload
            .as_ref()
            .expect("an upload guard holds its upload")
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(upload) = &self.upload {
            upload.discard();
        }
    }
}

/// Longest text field accepted (configs and prompts are small).
const MAX_FIELD_BYTES: usize = 256 * 1024;

/// All text fields of one form together, so that many fields cannot add up to what one
/// may not be.
const MAX_FORM_TEXT_BYTES: usize = 1024 * 1024;

/// Text fields in one form (the APIs take a handful).
const MAX_TEXT_FIELDS: usize = 64;

/// Why an upload was refused. Everything is checked while the form streams in, so a
/// refused request never holds more than one network chunk beyond its limit.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the form could not be read: {0}")]
    Malformed(String),
    /// The body stalled or trickled (`[http] body_stall_seconds`, `body_min_bytes_per_second`).
    #[error("{0}")]
    TooSlow(String),
    #[error("the upload is too large: {0}")]
    BodyTooLarge(String),
    #[error("the file is larger than the limit of {limit_mib} MiB")]
    FileTooLarge { limit_mib: u64 },
    #[error("the form field `{field}` is longer than the limit of {limit_kib} KiB")]
    FieldTooLarge { field: String, limit_kib: usize },
    #[error(
        "the form's text fields are longer than the limit of {limit_kib} KiB together (at `{field}`)"
    )]
    FormTextTooLarge { field: String, limit_kib: usize },
    #[error("the form has more than {limit} text fields")]
    TooManyFields { limit: usize },
    #[error("the form field `{field}` is not UTF-8 text")]
    NotText { field: String },
    #[error("more than one `{0}` field")]
    DuplicateFile(String),
    #[error("the form has no `{0}` field with the audio file")]
    MissingFile(String),
    #[error("the uploaded file is empty")]
    EmptyFile,
    #[error("cannot store the upload: {0}")]
    Storage(std::io::Error),
}

impl UploadError {
    /// The form field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::FieldTooLarge { field, .. }
            | Self::FormTextTooLarge { field, .. }
            | Self::NotText { field }
            | Self::DuplicateFile(field)
            | Self::MissingFile(field) => Some(field),
            _ => None,
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        let (status, code) = match &error {
            UploadError::Malformed(_)
            | UploadError::NotText { .. }
            | UploadError::DuplicateFile(_)
            | UploadError::MissingFile(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            UploadError::BodyTooLarge(_) | UploadError::FileTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            UploadError::FieldTooLarge { .. }
            | UploadError::FormTextTooLarge { .. }
            | UploadError::TooManyFields { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "field_too_large")
            }
            UploadError::EmptyFile => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "undecodable_audio"),
            UploadError::TooSlow(_) => (StatusCode::REQUEST_TIMEOUT, "upload_too_slow"),
            UploadError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

fn multipart_error(e: MultipartError) -> UploadError {
    // A paced body's cut-off sits deep in the source chain (multer only says "failed to
    // read stream").
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(error) = source {
        let text = error.to_string();
        if let Some(at) = text.find(crate::http::body::TOO_SLOW) {
            return UploadError::TooSlow(text[at..].to_owned());
        }
        source = error.source();
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadError::BodyTooLarge(e.to_string())
    } else {
        UploadError::Malformed(e.body_text())
    }
}

/// What the text fields of one form may still take.
struct TextBudget {
    fields: usize,
    bytes: usize,
}

impl TextBudget {
    fn new() -> Self {
        Self {
            fields: MAX_TEXT_FIELDS,
            bytes: MAX_FORM_TEXT_BYTES,
        }
    }

    /// Reads one text field chunk by chunk, refusing it as soon as it passes its own
    /// limit or the form's: never more than one chunk past a limit is held. (Reading the
    /// whole field first would let one request make the server hold the body limit,
    /// 513 MiB by default, per field.)
    async fn read(&mut self, field: &mut Field<'_>, name: &str) -> Result<String, UploadError> {
        self.fields = self
            .fields
            .checked_sub(1)
            .ok_or(UploadError::TooManyFields {
                limit: MAX_TEXT_FIELDS,
            })?;
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            let length = text.len() + chunk.len();
            if length > MAX_FIELD_BYTES {
                return Err(UploadError::FieldTooLarge {
                    field: name.to_owned(),
                    limit_kib: MAX_FIELD_BYTES >> 10,
                });
            }
            if length > self.bytes {
                return Err(UploadError::FormTextTooLarge {
                    field: name.to_owned(),
                    limit_kib: MAX_FORM_TEXT_BYTES >> 10,
                });
            }
            text.extend_from_slice(&chunk);
        }
        self.bytes -= text.len();
        String::from_utf8(text).map_err(|_| UploadError::NotText {
            field: name.to_owned(),
        })
    }
}

/// Reads a multipart form; the field named `file_field` is streamed to `dir`, under a
/// name of the server's own (a fresh id without the client's extension: the decoder
/// recognises formats by their bytes, and a kept file must never be taken for a page
/// because its client named it `.html`).
pub async fn receive(
    mut form: Multipart,
    file_field: &str,
    dir: &Path,
    max_bytes: u64,
) -> Result<UploadGuard, UploadError> {
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    let mut budget = TextBudget::new();
    let mut file: Option<(PathBuf, String, u64)> = None;
    let mut guard_path: Option<PathBuf> = None;
    let result: Result<(), UploadError> = async {
        while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name != file_field {
                let text = budget.read(&mut field, &name).await?;
                fields.entry(name).or_default().push(text);
                continue;
            }
            if file.is_some() {
                return Err(UploadError::DuplicateFile(file_field.to_owned()));
            }
            let original = field.file_name().unwrap_or("upload").to_owned();
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(UploadError::Storage)?;
            let path = dir.join(Uuid::new_v4().to_string());
            guard_path = Some(path.clone());
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(UploadError::Storage)?;
            let mut bytes = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                bytes += chunk.len() as u64;
                if bytes > max_bytes {
                    return Err(UploadError::FileTooLarge {
                        limit_mib: max_bytes >> 20,
                    });
                }
                out.write_all(&chunk).await.map_err(UploadError::Storage)?;
            }
            out.flush().await.map_err(UploadError::Storage)?;
            file = Some((path, display_name(&original), bytes));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(path) = guard_path {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let Some((path, file_name, bytes)) = file else {
        return Err(UploadError::MissingFile(file_field.to_owned()));
    };
    if bytes == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(UploadError::EmptyFile);
    }
    Ok(UploadGuard::new(Upload {
        path,
        file_name,
        bytes,
        fields,
    }))
}

/// Decodes the upload once to refuse what cannot be decoded before anything is queued.
///
/// Only the length is kept, so probing costs no memory however far the file expands.
pub async fn probe(path: &Path, limits: &DecodeLimits) -> Result<AudioScan, ApiError> {
    let path = path.to_owned();
    let limits = limits.clone();
    tokio::task::spawn_blocking(move || audio::scan_file(&path, &limits))
        .await
        .map_err(|e| ApiError::internal(format!("decoding failed: {e}")))?
        .map_err(ApiError::from)
}

/// The client's file name without any path, bounded in length.
fn display_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let base = crate::runtime::validate::truncate_chars(base, 200);
    if base.is_empty() {
        "upload".into()
    } else {
        base.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::FromRequest;

    /// A multipart form of text fields, plus a file `file` named `talk.html` if given.
    async fn form_of(fields: &[(String, Vec<u8>)], file: Option<&[u8]>) -> Multipart {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        if let Some(file) = file {
            body.extend_from_slice(
                b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"talk.html\"\r\n\r\n",
            );
            body.extend_from_slice(file);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--b--\r\n");
        let request = axum::http::Request::builder()
            .method("POST")
            .header("content-type", "multipart/form-data; boundary=b")
            .body(Body::from(body))
            .expect("a request");
        Multipart::from_request(request, &()).await.expect("a form")
    }

    fn field(name: &str, bytes: usize) -> (String, Vec<u8>) {
        (name.to_owned(), vec![b'x'; bytes])
    }

    async fn refusal(fields: &[(String, Vec<u8>)]) -> UploadError {
        let dir = tempfile::tempdir().expect("tempdir");
        let form = form_of(fields, Some(b"RIFF")).await;
        receive(form, "file", dir.path(), 1 << 20)
            .await
            .err()
            .expect("refused")
    }

    #[tokio::test]
    async fn a_text_field_is_taken_up_to_its_cap_and_refused_by_name_past_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let form = form_of(&[field("prompt", MAX_FIELD_BYTES)], Some(b"RIFF")).await;
        let guard = receive(form, "file", dir.path(), 1 << 20)
            .await
            .map_err(|e| e.to_string())
            .expect("at the cap");
        let upload = &*guard;
        assert_eq!(upload.field("prompt").map(str::len), Some(MAX_FIELD_BYTES));
        assert_eq!(upload.file_name, "talk.html");
        assert_eq!(
            upload.path.extension(),
            None,
            "stored without the client's extension"
        );
        let error = refusal(&[field("prompt", MAX_FIELD_BYTES + 1)]).await;
        assert_eq!(error.field(), Some("prompt"));
        assert!(
            matches!(error, UploadError::FieldTooLarge { .. }),
            "{error}"
        );
        let api = ApiError::from(error);
        assert_eq!(
            (api.status, api.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "field_too_large")
        );
        assert!(api.message.contains("`prompt`"), "{}", api.message);
    }

    #[tokio::test]
    async fn text_fields_cannot_add_up_past_the_forms_cap_or_count() {
        let quarter = MAX_FIELD_BYTES - 1024;
        let many: Vec<_> = (1..=5)
            .map(|n| field(&format!("note{n}"), quarter))
            .collect();
        let error = refusal(&many).await;
        assert!(
            matches!(error, UploadError::FormTextTooLarge { .. }),
            "{error}"
        );
        assert_eq!(error.field(), Some("note5"));
        let crowd: Vec<_> = (0..=MAX_TEXT_FIELDS)
            .map(|n| field(&format!("f{n}"), 1))
            .collect();
        assert!(matches!(
            refusal(&crowd).await,
            UploadError::TooManyFields { .. }
        ));
        let error = refusal(&[("config".to_owned(), vec![0xFF, 0xFE])]).await;
        assert_eq!(error.field(), Some("config"));
        assert!(matches!(error, UploadError::NotText { .. }), "{error}");
    }

    #[test]
    fn display_names_drop_paths() {
        assert_eq!(display_name("C:\\Users\\me\\talk.wav"), "talk.wav");
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("  "), "upload");
    }
}
