//! The one check of input and output bytes: exactly one JSON document.

/// Checks that `bytes` are exactly one JSON document in UTF-8, as the
/// service will parse them. Skipping into `IgnoredAny` is not enough:
/// serde_json does not check UTF-8 or surrogate escapes inside strings it
/// skips, so `"\xff"` or `"\ud800"` would pass here and fail later.
/// [`Checked`] reads every string (checking it) and builds nothing, which
/// costs less than parsing into a `serde_json::Value`.
pub(crate) fn one_json_document(bytes: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Checked>(bytes).map(|_| ())
}

/// Any JSON value, every string and key decoded and so checked, nothing kept.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::one_json_document;

    #[test]
    fn one_document_with_checked_strings_and_keys() {
        for ok in [
            &br#"{"a":[1,-2,3.5e3,true,null,{"b":"\u00e9\ud83d\ude00"}]}"#[..],
            b"\"x\"",
            b" 0 ",
        ] {
            assert!(
                one_json_document(ok).is_ok(),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"\xff\":1}",
            br#"{"\ud800":1}"#,
            br#"["\udc00"]"#,
            b"{} {}",
            b"",
            b"{\"a\":1,}",
        ] {
            assert!(
                one_json_document(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
