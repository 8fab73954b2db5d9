//! Every supported format as a real encoder writes it (ffmpeg, from the imageio-ffmpeg
//! wheel): transcribed word for word when whole; when cut short or damaged, either
//! transcribed as far as it goes or refused with a clear 4xx, never a 5xx, never a
//! crash; and a small file that decodes to hours of audio refused without the server's
//! memory growing.

use std::path::PathBuf;
use std::time::Duration;

use sandscribe_e2e::{Server, ServerOptions, encode, example_plugins_dir, memory_mib, speech_dir};
use serde_json::json;

const WHISPER: &str = "whisper-tiny-en";

/// A container and codec, and the ffmpeg arguments that make it from one WAV input.
struct Format {
    name: &'static str,
    file: &'static str,
    /// Arguments after the inputs; sample rates and channel counts vary on purpose, so
    /// downmixing and resampling are exercised too.
    codec: &'static [&'static str],
    /// Add a video track (a blue picture), as in a screen recording.
    video: bool,
}

const FORMATS: &[Format] = &[
    Format {
        name: "MP3, 44.1 kHz stereo",
        file: "clip.mp3",
        codec: &[
            "-ac",
            "2",
            "-ar",
            "44100",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
        ],
        video: false,
    },
    Format {
        name: "FLAC",
        file: "clip.flac",
        codec: &["-c:a", "flac"],
        video: false,
    },
    Format {
        name: "Ogg Vorbis, 48 kHz",
        file: "clip.ogg",
        codec: &["-ar", "48000", "-c:a", "libvorbis"],
        video: false,
    },
    Format {
        name: "AAC in M4A, 22.05 kHz",
        file: "clip.m4a",
        codec: &["-ar", "22050", "-c:a", "aac"],
        video: false,
    },
    Format {
        name: "MP4 video with AAC",
        file: "clip.mp4",
        codec: &["-shortest", "-c:v", "mpeg4", "-c:a", "aac"],
        video: true,
    },
    Format {
        name: "MKV video with Vorbis, stereo",
        file: "clip.mkv",
        codec: &[
            "-shortest",
            "-ac",
            "2",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libvorbis",
        ],
        video: true,
    },
    Format {
        name: "WAV, 8 kHz 8-bit",
        file: "clip.wav",
        codec: &["-ar", "8000", "-c:a", "pcm_u8"],
        video: false,
    },
];

fn goforward() -> PathBuf {
    speech_dir().join("goforward.wav")
}

/// The clip in `format`.
fn encoded(format: &Format) -> Vec<u8> {
    let wav = goforward();
    let wav = wav.to_string_lossy();
    let mut args: Vec<&str> = Vec::new();
    if format.video {
        args.extend(["-f", "lavfi", "-i", "color=c=blue:s=64x48:r=10"]);
    }
    args.extend(["-i", wav.as_ref()]);
    args.extend_from_slice(format.codec);
    encode(&args, format.file)
}

/// Lower case, letters and digits only, "10" as "ten".
fn words(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| if w == "10" { "ten" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_supported_format_is_transcribed_word_for_word() {
    let server = Server::start(
        ServerOptions::new()
            .plugins_dir(example_plugins_dir(&[WHISPER]))
            .memory_bytes(1 << 30)
            .max_running(2),
    );
    let jobs: Vec<(&Format, String)> = FORMATS
        .iter()
        .map(|format| {
            let id = server.submit_ok(WHISPER, &encoded(format), format.file, &json!({}));
            (format, id)
        })
        .collect();
    for (format, id) in jobs {
        let job = server.wait_terminal(&id, Duration::from_secs(120));
        assert_eq!(job["status"], "completed", "{}: {job:#}", format.name);
        // The clip is 2.8 s; encoders pad by a frame or two at most.
        let duration = job["duration_ms"].as_u64().unwrap_or_default();
        assert!(
            (2_700..=3_000).contains(&duration),
            "{}: {duration} ms",
            format.name
        );
        let result = server.get(&format!("/api/results/{id}")).expect(200).json();
        let text = result["transcript"]["text"].as_str().unwrap_or_default();
        assert_eq!(
            words(text),
            "go forward ten meters",
            "{}: {text:?}",
            format.name
        );
    }
}

#[test]
fn a_codec_that_is_not_supported_is_refused_naming_the_supported_ones() {
    let server = Server::start(ServerOptions::new());
    let opus = encode(
        &["-i", &goforward().to_string_lossy(), "-c:a", "libopus"],
        "clip.opus",
    );
    let reply = server
        .submit("echo", &opus, "clip.opus", &json!({}))
        .expect(415);
    assert_eq!(reply.error_code(), "undecodable_audio");
    let message = reply.error_message();
    assert!(
        message.contains("no audio track that can be decoded") && message.contains("Vorbis"),
        "{message}"
    );
    // A video with no audio track at all.
    let silent_film = encode(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x48:r=10:d=2",
            "-c:v",
            "mpeg4",
        ],
        "film.mp4",
    );
    let reply = server
        .submit("echo", &silent_film, "film.mp4", &json!({}))
        .expect(415);
    assert_eq!(reply.error_code(), "undecodable_audio");
}

/// A small deterministic generator, so a failing damage pattern can be reproduced.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Ways an upload arrives damaged: cut off at several points, header overwritten, a
/// third zeroed or filled with noise, scattered bit flips, short stretches overwritten
/// at random places. (Encoders put random ids in some containers, so the bytes, and
/// with them what a damage hits, differ from run to run; every outcome must be a clean
/// one.)
fn damaged(bytes: &[u8], rng: &mut XorShift) -> Vec<(&'static str, Vec<u8>)> {
    let len = bytes.len();
    let third = len / 3;
    let splice = |middle: Vec<u8>| {
        let mut out = bytes[..third].to_vec();
        out.extend(middle);
        out.extend_from_slice(&bytes[2 * third..]);
        out
    };
    let mut header = bytes.to_vec();
    header[..16].copy_from_slice(&rng.bytes(16));
    let mut flipped = bytes.to_vec();
    for _ in 0..len / 100 {
        let at = (rng.next() % len as u64) as usize;
        flipped[at] ^= 1 << (rng.next() % 8);
    }
    let mut stretches = Vec::new();
    for name in [
        "2 KB overwritten (1)",
        "2 KB overwritten (2)",
        "2 KB overwritten (3)",
    ] {
        let mut damaged = bytes.to_vec();
        let at = (rng.next() % len as u64) as usize;
        let end = (at + 2048).min(len);
        damaged[at..end].copy_from_slice(&rng.bytes(end - at));
        stretches.push((name, damaged));
    }
    let mut all = vec![
        ("first 64 bytes", bytes[..64].to_vec()),
        ("cut at 10%", bytes[..len / 10].to_vec()),
        ("cut at 50%", bytes[..len / 2].to_vec()),
        ("cut at 90%", bytes[..len * 9 / 10].to_vec()),
        ("header overwritten", header),
        ("middle third zeroed", splice(vec![0; third])),
        ("middle third noise", splice(rng.bytes(third))),
        ("1% of bytes bit-flipped", flipped),
    ];
    all.extend(stretches);
    all
}

#[test]
fn damaged_files_of_every_format_are_transcribed_as_far_as_they_go_or_refused_with_a_4xx() {
    let server = Server::start(ServerOptions::new().max_queued(200));
    let mut rng = XorShift(0x5eed_cafe_f00d);
    let mut accepted = Vec::new();
    let mut table = Vec::new();
    for format in FORMATS {
        let whole = encoded(format);
        for (damage, bytes) in damaged(&whole, &mut rng) {
            let what = format!("{} ({damage})", format.name);
            let reply = server.submit("echo", &bytes, format.file, &json!({}));
            match reply.status {
                202 => {
                    table.push(format!("{what}: accepted"));
                    accepted.push((
                        what.clone(),
                        reply.json()["id"].as_str().unwrap_or("").to_owned(),
                    ));
                }
                413 | 415 => {
                    let message = reply.error_message();
                    table.push(format!("{what}: {} {message}", reply.status));
                    assert!(
                        ["undecodable_audio", "too_large"].contains(&reply.error_code().as_str()),
                        "{what}: {}",
                        reply.text()
                    );
                    assert!(
                        message.len() > 20 && !message.contains("panicked"),
                        "{what}: {message}"
                    );
                }
                status => panic!("{what}: answered {status}: {}", reply.text()),
            }
            // A file with nothing but the start of its header never decodes.
            if damage == "first 64 bytes" {
                assert_eq!(reply.status, 415, "{what}: {}", reply.text());
            }
        }
    }
    eprintln!("{}", table.join("\n"));
    // What was accepted decodes when the job runs too, and is no longer than the clip.
    for (what, id) in &accepted {
        let job = server.wait_terminal(id, Duration::from_secs(60));
        assert_eq!(job["status"], "completed", "{what}: {job:#}");
        let duration = job["duration_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(duration <= 3_000, "{what}: {duration} ms");
    }
    // Cut short at half, the MKV demuxer used to panic; it is a 415 naming the damage.
    let mkv = encoded(&FORMATS[5]);
    let reply = server
        .submit("echo", &mkv[..mkv.len() / 2], "half.mkv", &json!({}))
        .expect(415);
    assert!(
        reply.error_message().contains("damaged or cut short"),
        "{}",
        reply.text()
    );
    server.assert_serves_echo_job();
    let results = server.get("/api/results").expect(200).json();
    assert_eq!(
        results["total"].as_u64(),
        Some(accepted.len() as u64 + 1),
        "only the accepted uploads became jobs"
    );
    let uploads = server.data_dir().join("uploads");
    let left: Vec<_> = uploads
        .read_dir()
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "uploads left behind: {left:?}");
}

/// Five hours of 48 kHz silence compress to 2.5 MB of FLAC but decode to 3.3 GB of
/// samples. Written to a pipe, so the header does not declare the length either.
fn decompression_bomb() -> Vec<u8> {
    encode(
        &[
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=48000:cl=mono",
            "-t",
            "18000",
            "-c:a",
            "flac",
            "-f",
            "flac",
        ],
        "bomb.flac",
    )
}

#[test]
fn a_small_file_that_decodes_to_hours_is_refused_without_the_memory_growing() {
    let bomb = decompression_bomb();
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    // The server's default limits: 4 hours of audio, 500 MiB uploads.
    let server = Server::start(ServerOptions::new());
    server.assert_serves_echo_job();
    let (_, peak_before) = memory_mib(server.pid());
    // Several at once, as an attacker would send them.
    let replies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| server.submit("echo", &bomb, "quiet.flac", &json!({}))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    for reply in replies {
        let reply = reply.expect(413);
        assert_eq!(reply.error_code(), "too_large");
        assert!(
            reply
                .error_message()
                .contains("more than the limit of 4:00:00.000"),
            "{}",
            reply.text()
        );
    }
    let (_, peak_after) = memory_mib(server.pid());
    assert!(
        peak_after < peak_before + 64,
        "peak memory grew from {peak_before} MiB to {peak_after} MiB"
    );
    eprintln!("peak server memory {peak_before} MiB before, {peak_after} MiB after 3 bombs");
    let results = server.get("/api/results").expect(200).json();
    assert_eq!(results["total"].as_u64(), Some(1), "{results:#}");
    server.assert_serves_echo_job();
}
