//! Receiving uploads: multipart fields, the file streamed to disk under a size limit.
//!
//! Shared by the JSON API and the OpenAI-compatible API, so both enforce the same limits
//! and keep the upload on disk until its job is finished.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
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
pub struct UploadGuard(pub Option<Upload>);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(upload) = &self.0 {
            upload.discard();
        }
    }
}

/// Longest text field accepted (configs and prompts are small).
const MAX_FIELD_BYTES: usize = 256 * 1024;

fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "too_large", format!("the upload is too large: {e}"))
    } else {
        ApiError::bad_request(format!("the form could not be read: {}", e.body_text()))
    }
}

/// Reads a multipart form; the field named `file_field` is streamed to `dir`.
pub async fn receive(
    mut form: Multipart,
    file_field: &str,
    dir: &Path,
    max_bytes: u64,
) -> Result<UploadGuard, ApiError> {
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    let mut file: Option<(PathBuf, String, u64)> = None;
    let mut guard_path: Option<PathBuf> = None;
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == file_field {
                if file.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "more than one `{file_field}` field"
                    )));
                }
                let original = field.file_name().unwrap_or("upload").to_owned();
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    ApiError::internal(format!("cannot create the uploads folder: {e}"))
                })?;
                let path = dir.join(format!("{}{}", Uuid::new_v4(), safe_extension(&original)));
                guard_path = Some(path.clone());
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    bytes += chunk.len() as u64;
                    if bytes > max_bytes {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too_large",
                            format!(
                                "the file is larger than the limit of {} MiB",
                                max_bytes >> 20
                            ),
                        ));
                    }
                    out.write_all(&chunk)
                        .await
                        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
                }
                out.flush()
                    .await
                    .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
                file = Some((path, display_name(&original), bytes));
            } else {
                let text = field.text().await.map_err(multipart_error)?;
                if text.len() > MAX_FIELD_BYTES {
                    return Err(ApiError::bad_request(format!(
                        "the field `{name}` is too long"
                    )));
                }
                fields.entry(name).or_default().push(text);
            }
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
        return Err(ApiError::bad_request(format!(
            "the form has no `{file_field}` field with the audio file"
        )));
    };
    if bytes == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "undecodable_audio",
            "the uploaded file is empty",
        ));
    }
    Ok(UploadGuard(Some(Upload {
        path,
        file_name,
        bytes,
        fields,
    })))
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

/// A short extension from the client's file name, used as a format hint.
fn safe_extension(name: &str) -> String {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some(ext)
            if !ext.is_empty()
                && ext.len() <= 8
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
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

    #[test]
    fn extensions_are_sanitised() {
        assert_eq!(safe_extension("talk.MP3"), ".mp3");
        assert_eq!(safe_extension("x.tar.gz"), ".gz");
        assert_eq!(safe_extension("evil.m/../p3"), "");
        assert_eq!(safe_extension("noext"), "");
    }

    #[test]
    fn display_names_drop_paths() {
        assert_eq!(display_name("C:\\Users\\me\\talk.wav"), "talk.wav");
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("  "), "upload");
    }
}
