//! Reads the known-answer files in tests/vectors: `[section]` headers and `key = hex` lines,
//! records separated by blank lines, `#` comments.

use std::collections::HashMap;

pub type Record = HashMap<String, String>;

#[allow(dead_code)]
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[allow(dead_code)]
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The records of `section` in `text`.
#[allow(dead_code)]
pub fn records(text: &str, section: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut current = Record::new();
    let mut in_section = false;
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
            continue;
        }
        if line.is_empty() {
            if in_section && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
            continue;
        }
        if let Some((key, value)) = line.split_once(" = ") {
            current.insert(key.to_string(), value.to_string());
        }
    }
    out
}
