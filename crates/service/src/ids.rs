//! Execution ids: a millisecond timestamp then 80 random bits, in hex, so
//! they sort by time and never collide in practice.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn execution_id(now: SystemTime) -> String {
    let ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut random = [0u8; 10];
    // getrandom only fails when the OS has no entropy source at all; a
    // time-and-counter fallback keeps ids unique within this process then.
    if getrandom::fill(&mut random).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        random[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    format!("{:012x}{}", ms & 0xffff_ffff_ffff, hex::encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_sort_by_time() {
        let a = execution_id(UNIX_EPOCH + std::time::Duration::from_millis(1_000));
        let b = execution_id(UNIX_EPOCH + std::time::Duration::from_millis(2_000));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(a < b);
        assert_ne!(
            execution_id(SystemTime::now()),
            execution_id(SystemTime::now())
        );
    }
}
