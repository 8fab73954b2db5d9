//! Panics reported through the host's log, with where they happened.
//!
//! A panic in a plugin aborts the component (the host sees a trap), so nothing after it
//! runs. Before that, the hook installed here logs `panicked at src/lib.rs:110:22: the
//! message` as an error through the host's `log` import; the host quotes that line in
//! the job's failure, so the person reading `plugin_trap` sees where it broke. Rust's
//! default hook would write the same to stderr, split over lines the host may cut.

/// Installs the hook, once per instance (the export macro calls it at every entry).
#[doc(hidden)]
pub fn install_hook() {
    // Natively the host imports do not exist: a plugin's unit tests keep the default hook.
    #[cfg(target_arch = "wasm32")]
    {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let location = info.location().map(|l| (l.file(), l.line(), l.column()));
                crate::reporting::error(&describe(location, payload_text(info.payload())));
            }));
        });
    }
}

/// The text a panic carries (`panic!("...")` gives a `&str` or a `String`).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// One log line: `panicked at FILE:LINE:COLUMN: message`, the message's own lines joined
/// with " / " so the whole report stays one line of the job's log.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn describe(location: Option<(&str, u32, u32)>, message: &str) -> String {
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    match location {
        Some((file, line, column)) => format!("panicked at {file}:{line}:{column}: {message}"),
        None => format!("panicked: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_one_line_with_its_location() {
        assert_eq!(
            describe(Some(("src/lib.rs", 110, 22)), "index out of bounds"),
            "panicked at src/lib.rs:110:22: index out of bounds"
        );
        assert_eq!(
            describe(Some(("src/lib.rs", 1, 1)), "first\n\n second \n"),
            "panicked at src/lib.rs:1:1: first / second"
        );
        assert_eq!(describe(None, "lost"), "panicked: lost");
    }

    #[test]
    fn the_payload_text_is_read_from_str_and_string_panics() {
        let text: Box<dyn std::any::Any + Send> = Box::new("static");
        assert_eq!(payload_text(text.as_ref()), "static");
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(payload_text(owned.as_ref()), "owned");
        let other: Box<dyn std::any::Any + Send> = Box::new(7_u8);
        assert_eq!(payload_text(other.as_ref()), "(a panic without a message)");
    }
}
