//! The secrets scan: credentials written into an addon's files. A finding names the kind
//! of secret, its length and at most its public prefix (`ghp_`, `AKIA`), never the
//! value; its fingerprint (a hash of the kind and the value) is what a baseline
//! acknowledges, so a moved line stays acknowledged and a new secret does not.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// A secret found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) line: u32,
    /// What it is, without its value.
    pub(crate) description: String,
    /// sha256 of the kind and the value, 16 hex digits.
    pub(crate) fingerprint: String,
}

/// The file extensions the scan reads (text files an addon ships).
pub(crate) const EXTENSIONS: &[&str] = &[
    "py", "xml", "csv", "js", "json", "yml", "yaml", "txt", "cfg", "conf", "ini", "env", "sh",
    "md", "rst", "toml", "po", "pot", "pem", "key", "html", "scss", "css",
];

struct Pattern {
    kind: &'static str,
    /// How many leading characters are a public prefix that may be shown.
    shown: usize,
    regex: Regex,
}

fn patterns() -> &'static [Pattern] {
    static PATTERNS: OnceLock<Vec<Pattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let pattern = |kind, shown, re: &str| {
            Regex::new(re)
                .ok()
                .map(|regex| Pattern { kind, shown, regex })
        };
        [
            pattern(
                "a private key",
                0,
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
            ),
            pattern("an AWS access key id", 4, r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            pattern(
                "a GitHub token",
                4,
                r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b",
            ),
            pattern("a Slack token", 5, r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
            pattern("a Stripe live key", 8, r"\b[sr]k_live_[A-Za-z0-9]{16,}\b"),
            pattern("a Google API key", 4, r"\bAIza[0-9A-Za-z_\-]{35}\b"),
        ]
        .into_iter()
        .flatten()
        .collect()
    })
}

/// `password = "..."`, `'api_key': '...'`, `token: "..."` and the like.
fn assignment() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?i)["']?\b([a-z0-9_]*(?:password|passwd|pwd|secret|api_?key|token|access_key|smtp_pass)[a-z0-9_]*)\b["']?\s*(?:=|:)\s*[rbu]?(?:"([^"\n]*)"|'([^'\n]*)')"#,
        )
        .unwrap_or_else(|_| unreachable!())
    })
}

/// `<field name="password">...</field>` in XML data.
fn xml_field() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"<field\s+name=["']([a-z_]*(?:password|passwd|smtp_pass|secret|api_key|token)[a-z_]*)["'][^>]*>([^<]*)</field>"#,
        )
        .unwrap_or_else(|_| unreachable!())
    })
}

fn fingerprint(kind: &str, value: &str) -> String {
    let digest = Sha256::digest(format!("{kind}\0{value}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Shannon entropy in bits per character.
fn entropy(value: &str) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let total = value.chars().count() as f64;
    counts
        .values()
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum()
}

/// Whether a literal assigned to a secret-looking name is a real value: long enough,
/// not a reference to somewhere else, not a placeholder, not a sentence.
fn looks_secret(name: &str, value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let placeholder = [
        "changeme",
        "change_me",
        "change-me",
        "password",
        "secret",
        "example",
        "dummy",
        "placeholder",
        "redacted",
        "your_",
        "your-",
        "xxxx",
        "****",
        "....",
    ];
    value.chars().count() >= 8
        && !value.chars().any(char::is_whitespace)
        && !lower.eq_ignore_ascii_case(name)
        && !placeholder.iter().any(|p| lower.contains(p))
        && !lower.starts_with("test")
        && !["${", "%(", "{{", "{", "<", "$"]
            .iter()
            .any(|p| value.starts_with(p))
        && entropy(value) >= 2.5
}

/// The secrets of one file's text.
pub(crate) fn scan(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (index, line_text) in text.lines().enumerate() {
        let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
        if line_text.len() > 4096 {
            // Minified code or embedded data: no credential is written like that.
            continue;
        }
        let mut found: Option<Hit> = None;
        for pattern in patterns() {
            if let Some(m) = pattern.regex.find(line_text) {
                let value = m.as_str();
                let prefix: String = value.chars().take(pattern.shown).collect();
                let description = if pattern.shown == 0 {
                    pattern.kind.to_owned()
                } else {
                    format!(
                        "{} ({prefix}..., {} characters)",
                        pattern.kind,
                        value.chars().count()
                    )
                };
                found = Some(Hit {
                    line,
                    description,
                    fingerprint: fingerprint(pattern.kind, value),
                });
                break;
            }
        }
        if found.is_none() {
            for capture in assignment()
                .captures_iter(line_text)
                .chain(xml_field().captures_iter(line_text))
            {
                let name = capture.get(1).map_or("", |m| m.as_str());
                let Some(value) = capture.get(2).or_else(|| capture.get(3)) else {
                    continue;
                };
                let value = value.as_str().trim();
                if looks_secret(name, value) {
                    found = Some(Hit {
                        line,
                        description: format!(
                            "a literal assigned to `{name}` ({} characters)",
                            value.chars().count()
                        ),
                        fingerprint: fingerprint(name, value),
                    });
                    break;
                }
            }
        }
        hits.extend(found);
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn secrets_are_found_and_never_shown() {
        let token = format!(
            "ghp_{}",
            "a1B2c3D4e5".repeat(4).get(..36).unwrap_or_default()
        );
        let text = format!(
            "import os\npassword = os.environ['SMTP_PASSWORD']\napi_key = ''\nsmtp_password = 'Qz7!vR2#mK9p'\nTOKEN = \"{token}\"\npassword = 'changeme'\nkey = \"-----BEGIN RSA PRIVATE KEY-----\"\ntoken = '${{TOKEN}}'\n"
        );
        let hits = scan(&text);
        let lines: Vec<_> = hits.iter().map(|h| h.line).collect();
        assert_eq!(lines, [4, 5, 7]);
        for hit in &hits {
            assert!(!hit.description.contains("Qz7!vR2#mK9p"), "{hit:?}");
            assert!(!hit.description.contains(&token), "{hit:?}");
        }
        assert!(hits[1].description.contains("GitHub token (ghp_..."));
    }

    #[test]
    fn an_xml_password_field_is_a_secret() {
        let hits = scan("<record id=\"s\" model=\"ir.mail_server\">\n  <field name=\"smtp_pass\">Hunter2Hunter2</field>\n  <field name=\"smtp_user\">shop</field>\n</record>\n");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, 2);
    }

    #[test]
    fn the_fingerprint_follows_the_value_not_the_line() {
        let a = scan("x = 1\nsecret = 'Qz7!vR2#mK9p'\n");
        let b = scan("secret = 'Qz7!vR2#mK9p'\n");
        let c = scan("secret = 'Qz7!vR2#mK9q'\n");
        assert_eq!(a[0].fingerprint, b[0].fingerprint);
        assert_ne!(a[0].fingerprint, c[0].fingerprint);
    }
}
