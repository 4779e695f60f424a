//! Panics without WASI: the hook logs the message at level error, then
//! the `panic = "abort"` runtime executes `unreachable`, the host reports
//! `trap` and appends that last error line to the outcome's message:
//! `trap: unreachable executed; guest: panicked at src/lib.rs:10:5: boom`.

use std::any::Any;

/// Installs the hook (wasm32 only; on other targets panics unwind as usual
/// so test harnesses keep working). Each call runs in a fresh instance, so
/// this runs once per call.
pub(crate) fn install() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| (l.file(), l.line(), l.column()));
        crate::host::log(
            crate::log::Level::Error as i32,
            message(info.payload(), location).as_bytes(),
        );
    }));
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
/// The text of a panic payload: `panic!` gives a `&str` or a `String`.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "Box<dyn Any>"
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
/// `panicked at FILE:LINE:COL: MESSAGE`, the wording of Rust's own hook.
pub(crate) fn message(payload: &(dyn Any + Send), location: Option<(&str, u32, u32)>) -> String {
    let text = payload_text(payload);
    match location {
        Some((file, line, col)) => format!("panicked at {}:{}:{}: {}", file, line, col, text),
        None => format!("panicked: {}", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_rust() {
        let p: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(
            message(&*p, Some(("src/lib.rs", 10, 5))),
            "panicked at src/lib.rs:10:5: boom"
        );
        let p: Box<dyn Any + Send> = Box::new(format!("bad {}", 7));
        assert_eq!(message(&*p, None), "panicked: bad 7");
        let p: Box<dyn Any + Send> = Box::new(3u8);
        assert_eq!(message(&*p, None), "panicked: Box<dyn Any>");
    }
}
