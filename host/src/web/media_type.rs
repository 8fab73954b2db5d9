//! The media type of an audio or video file, from its bytes — never from its name.
//!
//! A file is served to the browser (kept audio for the results player, a media-folder
//! file for the preview) under the type its container's signature names, the same
//! signatures the decoder recognises it by. A name proves nothing: a valid WAV named
//! `poly.html` is still `audio/wav`, and a file whose bytes match no container is
//! `application/octet-stream`, to be downloaded, never rendered.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A container the decoder reads, by its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Aiff,
    Caf,
    Flac,
    Ogg,
    Mp3,
    Adts,
    Mp4Audio,
    Mp4Video,
    Webm,
    Matroska,
}

impl Container {
    /// The media type it is served as.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Aiff => "audio/aiff",
            Self::Caf => "audio/x-caf",
            Self::Flac => "audio/flac",
            Self::Ogg => "audio/ogg",
            Self::Mp3 => "audio/mpeg",
            Self::Adts => "audio/aac",
            Self::Mp4Audio => "audio/mp4",
            Self::Mp4Video => "video/mp4",
            Self::Webm => "video/webm",
            Self::Matroska => "video/x-matroska",
        }
    }

    /// The container whose signature `head` (a file's first bytes) starts with.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        let at =
            |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        if (at(0, b"RIFF") || at(0, b"RF64") || at(0, b"BW64")) && at(8, b"WAVE") {
            return Some(Self::Wav);
        }
        if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
            return Some(Self::Aiff);
        }
        if at(0, b"caff") {
            return Some(Self::Caf);
        }
        if at(0, b"fLaC") {
            return Some(Self::Flac);
        }
        if at(0, b"OggS") {
            return Some(Self::Ogg);
        }
        if at(4, b"ftyp") {
            let audio_brand = [b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "]
                .iter()
                .any(|brand| at(8, *brand));
            return Some(if audio_brand {
                Self::Mp4Audio
            } else {
                Self::Mp4Video
            });
        }
        if at(0, b"\x1A\x45\xDF\xA3") {
            let webm = head.windows(4).any(|w| w == b"webm");
            return Some(if webm { Self::Webm } else { Self::Matroska });
        }
        match head {
            // ADTS: sync word, layer 0.
            [0xFF, second, ..] if second & 0xF6 == 0xF0 => Some(Self::Adts),
            // MPEG audio frame: sync word, any layer but the reserved one.
            [0xFF, second, ..] if second & 0xE0 == 0xE0 && second & 0x06 != 0 => Some(Self::Mp3),
            _ => None,
        }
    }

    /// The container of the file at `path`, looking past a leading ID3v2 tag (MP3, and
    /// FLAC written by some taggers, start with one).
    pub fn of_file(path: &Path) -> Option<Self> {
        let mut file = std::fs::File::open(path).ok()?;
        let mut head = [0u8; 64];
        let read = read_head(&mut file, &mut head)?;
        let head = &head[..read];
        let Some(tag_end) = id3v2_end(head) else {
            return Self::sniff(head);
        };
        let mut after = [0u8; 64];
        file.seek(SeekFrom::Start(tag_end)).ok()?;
        let read = read_head(&mut file, &mut after)?;
        // A tag followed by something unknown is still most likely an MP3.
        Some(Self::sniff(&after[..read]).unwrap_or(Self::Mp3))
    }
}

/// Fills `buffer` as far as the file goes.
fn read_head(file: &mut std::fs::File, buffer: &mut [u8]) -> Option<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(filled)
}

/// Where a leading ID3v2 tag ends (header, syncsafe size, optional footer).
fn id3v2_end(head: &[u8]) -> Option<u64> {
    let header = head.get(..10)?;
    if &header[..3] != b"ID3" || header[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = header[6..10]
        .iter()
        .fold(0u64, |size, b| (size << 7) | u64::from(*b));
    let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_known_by_their_signatures() {
        let wav = b"RIFF\x24\x00\x00\x00WAVEfmt ";
        assert_eq!(Container::sniff(wav), Some(Container::Wav));
        assert_eq!(
            Container::sniff(b"\x00\x00\x00\x20ftypM4A \x00"),
            Some(Container::Mp4Audio)
        );
        assert_eq!(
            Container::sniff(b"\x00\x00\x00\x20ftypisom\x00"),
            Some(Container::Mp4Video)
        );
        assert_eq!(
            Container::sniff(b"\x1A\x45\xDF\xA3\x9F\x42\x82\x84webm"),
            Some(Container::Webm)
        );
        assert_eq!(Container::sniff(&[0xFF, 0xFB, 0x90]), Some(Container::Mp3));
        assert_eq!(Container::sniff(&[0xFF, 0xF1, 0x50]), Some(Container::Adts));
        for other in [
            &b"<!doctype html><script>"[..],
            b"RIFF\x24\x00\x00\x00AVI ",
            b"",
            &[0xFF],
        ] {
            assert_eq!(Container::sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_wav_named_html_is_still_audio_and_an_id3_tag_is_looked_past() {
        let dir = tempfile::tempdir().expect("tempdir");
        let poly = dir.path().join("poly.html");
        std::fs::write(&poly, b"RIFF\x24\x00\x00\x00WAVEjunk<script>").expect("write");
        assert_eq!(Container::of_file(&poly), Some(Container::Wav));
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05xxxxx".to_vec();
        tagged.extend_from_slice(b"fLaC\x00\x00\x00\x22");
        let flac = dir.path().join("tagged");
        std::fs::write(&flac, &tagged).expect("write");
        assert_eq!(Container::of_file(&flac), Some(Container::Flac));
        let page = dir.path().join("talk.wav");
        std::fs::write(&page, b"<html>").expect("write");
        assert_eq!(Container::of_file(&page), None);
    }
}
