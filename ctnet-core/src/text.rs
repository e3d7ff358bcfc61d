//! Terminal-safe text: the one escaping rule for every name that reaches a terminal.
//!
//! Interface names may hold ESC, `/run/netns` file names any byte but `/`, a process's
//! comm any byte at all; a container's name and image come from whoever runs it. All of
//! them are shown, never obeyed: every character that is not printable (C0 and C1
//! controls, ESC, DEL, the bidi overrides and isolates that reorder a line, the line
//! and paragraph separators, the invisible characters that make two names look alike)
//! is written as an escape (`\x1b`, `\n`, `\u{202e}`), so a
//! name can neither move the cursor, retitle the window, hide text, nor forge a line
//! or a table row. JSON output does not go through here: serde escapes what JSON
//! needs and keeps every string exact.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, LRM/RLM, the embeddings/overrides and isolates.
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators break lines on some terminals.
            | '\u{2028}' | '\u{2029}'
            // Invisible characters that make two names look alike: zero width space,
            // word joiner and invisible operators, the deprecated format controls, the
            // byte order mark, the interlinear annotation controls.
            | '\u{200b}' | '\u{2060}'..='\u{2064}' | '\u{206a}'..='\u{206f}' | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    use fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every unsafe character escaped (borrowed when there is none).
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_where(s, is_unsafe)
}

/// Like [`escape`], but newlines stay: for whole messages and multi-line texts that
/// ctnet itself laid out, where the names inside were escaped already.
pub fn escape_keep_newlines(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c != '\n' && is_unsafe(c))
}

fn escape_where(s: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(&unsafe_char) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if unsafe_char(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Bytes that should be text (a file name, a comm): valid UTF-8 as [`escape`] shows
/// it, every invalid byte as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => escape(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(&escape(chunk.valid()));
                for byte in chunk.invalid() {
                    use fmt::Write as _;
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// A path as text, escaped (`Path::display` would pass controls through).
pub fn path(p: &std::path::Path) -> Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt as _;
    escape_bytes(p.as_os_str().as_bytes())
}

/// `Display` of a string through [`escape`]: `format!("{}", Esc(name))`.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// A copy of `value` with every string in it (and every map key) escaped, for the
/// text renderers; `None` when nothing needed escaping, so the caller keeps its own.
///
/// It goes through `serde_json::Value`, so every field of the model is covered,
/// including fields added later, without a renderer having to remember any of them.
pub fn escaped<T>(value: &T) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if !needs_escape(value) {
        return None;
    }
    let mut v = serde_json::to_value(value).ok()?;
    escape_value(&mut v);
    // Only strings holding an unsafe character change, and a string that reads into
    // a typed field (an address, one of the model's enum names) never holds one, so
    // what `value` wrote always reads back.
    Some(serde_json::from_value(v).expect("escaping changes free-text strings only"))
}

/// Whether any string in `value` holds an unsafe character. It streams `value` as
/// JSON through a scanner, allocating nothing: a host of 200 000 links is checked
/// without a copy of it.
pub fn needs_escape<T: serde::Serialize>(value: &T) -> bool {
    let mut scan = Scanner::default();
    // The scanner never fails; it stops the serializer early once it found one.
    let _ = serde_json::to_writer(&mut scan, value);
    scan.found
}

/// Finds unsafe characters in serde_json's output: controls appear there as escapes
/// (`\n`, `\u001b`), the others as their UTF-8 bytes.
#[derive(Default)]
struct Scanner {
    found: bool,
    backslash: bool,
    last: [u8; 2],
}

impl std::io::Write for Scanner {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            let [p2, p1] = self.last;
            self.last = [p1, b];
            if self.backslash {
                self.backslash = false;
                // `\\`, `\"` and `\/` are text; the rest are controls.
                if matches!(b, b'b' | b'f' | b'n' | b'r' | b't' | b'u') {
                    self.found = true;
                }
                // A backslash that was escaped does not escape what follows.
                self.last = [p1, 0];
                continue;
            }
            self.found |= match b {
                b'\\' => {
                    self.backslash = true;
                    false
                }
                0x7f => true,
                0x80..=0x9f if p1 == 0xc2 => true,
                0x9c if p1 == 0xd8 => true,
                0x8b | 0x8e | 0x8f | 0xa8..=0xae if p2 == 0xe2 && p1 == 0x80 => true,
                0xa0..=0xa4 | 0xa6..=0xa9 | 0xaa..=0xaf if p2 == 0xe2 && p1 == 0x81 => true,
                0xbf if p2 == 0xef && p1 == 0xbb => true,
                0xb9..=0xbb if p2 == 0xef && p1 == 0xbf => true,
                _ => false,
            };
        }
        if self.found {
            return Err(std::io::Error::other("found"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn escape_value(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => match escape(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(e) => {
                *s = e;
                true
            }
        },
        Value::Array(a) => a.iter_mut().fold(false, |acc, x| escape_value(x) | acc),
        Value::Object(m) => {
            let unsafe_keys = m.keys().any(|k| k.contains(is_unsafe));
            let mut changed = false;
            if unsafe_keys {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    escape_value(&mut x);
                    m.insert(escape(&k).into_owned(), x);
                }
                changed = true;
            }
            m.values_mut().fold(changed, |acc, x| escape_value(x) | acc)
        }
        _ => false,
    }
}

/// Sort key that orders names as people read them: text, then digits as numbers, so
/// `veth2` sorts before `veth10` and `c2` before `c10`.
pub fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for ch in name.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            if !digits.is_empty() {
                out.push((std::mem::take(&mut text), digits.parse().unwrap_or(u64::MAX)));
                digits.clear();
            }
            text.push(ch);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_names_naturally() {
        let mut v = vec!["veth10", "veth2", "br0", "veth1a", "veth1"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, ["br0", "veth1", "veth1a", "veth2", "veth10"]);
    }

    #[test]
    fn escapes_controls_bidi_and_separators_but_keeps_text() {
        let cases = [
            ("eth0", "eth0"),
            ("a\x1b]0;pwned\x07b", "a\\x1b]0;pwned\\x07b"),
            ("row\nforged", "row\\nforged"),
            ("tab\there\r", "tab\\there\\r"),
            ("del\x7f", "del\\x7f"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("iso\u{2066}x\u{2069}", "iso\\u{2066}x\\u{2069}"),
            ("ünïcödé ✓ 容器", "ünïcödé ✓ 容器"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert!(!escape(raw).contains(is_unsafe));
        }
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_keep_newlines("a\nb\x1b"), "a\nb\\x1b");
    }

    #[test]
    fn escapes_invalid_utf8_bytes_as_hex() {
        assert_eq!(escape_bytes(b"ns\xff\x1b"), "ns\\xff\\x1b");
        assert_eq!(escape_bytes(b"ok"), "ok");
        assert_eq!(path(std::path::Path::new("/run/netns/a\nb")), "/run/netns/a\\nb");
    }

    #[test]
    fn escaped_copies_reach_every_string_and_key() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("k\x1b".to_string(), vec!["v\n".to_string()]);
        let e = escaped(&m).expect("changed");
        assert_eq!(e.get("k\\x1b").map(|v| v[0].as_str()), Some("v\\n"));
        assert!(escaped(&vec!["clean".to_string()]).is_none());
    }

    #[test]
    fn the_scanner_agrees_with_the_rule_for_every_character() {
        // Every char of the BMP's first pages and the bidi block, alone and amid
        // backslashes, quotes and multi-byte text.
        let chars = (0u32..0x3000).chain(0xfe00..0x10000).filter_map(char::from_u32);
        for c in chars {
            for s in [
                format!("{c}"),
                format!("\\\\{c}é"),
                format!("\"{c}\\"),
                format!("容{c}"),
            ] {
                assert_eq!(needs_escape(&s), s.contains(is_unsafe), "{:?}", s);
            }
        }
        assert!(
            !needs_escape(&"a\\nb".to_string()),
            "a backslash and an n are text"
        );
    }
}
