//! JSON text exactly as the reference's serializer writes it.
//!
//! The 2023 reference marshals everything the discovery signs, stores and serves with
//! json-iterator v1.1.12 `ConfigFastest` (compact, no HTML escaping). Its string writer
//! (`Stream.WriteString` / `writeStringSlowPath`) escapes only:
//!
//! * `"` and `\` as `\"` and `\\`;
//! * line feed, carriage return and tab as `\n`, `\r`, `\t`;
//! * every other byte below 0x20 as `\u00xx` (lowercase hex).
//!
//! Everything else is written raw: `<`, `>`, `&`, DEL, U+2028/U+2029 and all other non-ASCII.
//! serde_json differs (it writes `\b` and `\f` short), which would change the signed bytes, so
//! this module writes strings itself.
//!
//! Note: `dmsg-wire.md` 5.2 lists `\r` among the `\u00XX` escapes; the vendored json-iterator
//! v1.1.12 source (`stream_str.go`, `case '\r'`) writes it short, and so do we. Only entries
//! whose strings contain a carriage return are affected.

/// Appends `s` as a JSON string literal (with quotes) escaped like json-iterator `ConfigFastest`.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string literal (see [`write_string`]).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// A JSON array of strings, e.g. the `/dmsg-discovery/entries` body.
pub fn string_array<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, s.as_ref());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_jsoniter() {
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string("\n\r\t"), r#""\n\r\t""#);
        assert_eq!(
            string("\u{8}\u{c}\u{0}\u{1f}"),
            r#""\u0008\u000c\u0000\u001f""#
        );
        assert_eq!(string("<>&\u{7f}\u{2028}é"), "\"<>&\u{7f}\u{2028}é\"");
        assert_eq!(string(""), "\"\"");
    }

    #[test]
    fn parses_back_with_serde_json() {
        let s = "x\u{1}\u{8}\"\\\n\r\t\u{2029}y";
        let back: String = serde_json::from_str(&string(s)).unwrap_or_default();
        assert_eq!(back, s);
    }

    #[test]
    fn arrays() {
        assert_eq!(string_array(Vec::<String>::new()), "[]");
        assert_eq!(string_array(["a", "b"]), r#"["a","b"]"#);
    }
}
