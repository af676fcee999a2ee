//! Finding `@login` and `@org/team` mentions in Markdown the way GitHub does.
//!
//! GitHub links a mention only in prose: not inside e-mail addresses
//! (`a@b.com`), inline code spans, fenced or indented code blocks, and — for
//! our purposes — not in quoted (`>`) lines, which repeat someone else's words
//! and would re-notify people who were already told.

use crate::config::members::is_github_login;

/// One mention, in the order it first appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    User(String),
    Team { org: String, slug: String },
}

/// Every distinct mention in `body` (case-insensitive), first occurrence first.
pub fn extract(body: &str) -> Vec<Mention> {
    let mut found: Vec<Mention> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut prev_blank = true;
    let mut in_indented_code = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((ch, len)) = fence {
            if indent < 4
                && fence_run(trimmed).is_some_and(|(c, l)| c == ch && l >= len)
                && trimmed.trim_start_matches(ch).trim().is_empty()
            {
                fence = None;
            }
            continue;
        }
        if indent < 4
            && let Some(f) = fence_run(trimmed)
        {
            fence = Some(f);
            continue;
        }
        let blank = trimmed.is_empty();
        let indented = line.starts_with('\t') || line.starts_with("    ");
        in_indented_code = indented && !blank && (prev_blank || in_indented_code);
        prev_blank = blank;
        if in_indented_code || trimmed.starts_with('>') {
            continue;
        }
        for m in mentions_in_line(&strip_code_spans(line)) {
            let dup = found.iter().any(|f| same(f, &m));
            if !dup {
                found.push(m);
            }
        }
    }
    found
}

fn same(a: &Mention, b: &Mention) -> bool {
    match (a, b) {
        (Mention::User(x), Mention::User(y)) => x.eq_ignore_ascii_case(y),
        (Mention::Team { org: o1, slug: s1 }, Mention::Team { org: o2, slug: s2 }) => {
            o1.eq_ignore_ascii_case(o2) && s1.eq_ignore_ascii_case(s2)
        }
        _ => false,
    }
}

/// A code fence opener: three or more backticks or tildes.
fn fence_run(s: &str) -> Option<(char, usize)> {
    let c = s.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = s.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// Replaces the content of inline code spans with spaces. A backtick run opens a
/// span only if a run of the same length closes it, as in CommonMark.
fn strip_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] == '`' {
            i += 1;
        }
        let run = i - start;
        // Look for a closing run of exactly `run` backticks.
        let mut j = i;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let s = j;
                while j < chars.len() && chars[j] == '`' {
                    j += 1;
                }
                if j - s == run {
                    close = Some(j);
                    break;
                }
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - start));
                i = end;
            }
            None => out.extend(std::iter::repeat_n('`', run)),
        }
    }
    out
}

fn is_login_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn mentions_in_line(line: &str) -> Vec<Mention> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            i += 1;
            continue;
        }
        // Not after a word character or path/e-mail punctuation: `a@b.com`, `x/@y`.
        if i > 0 {
            let p = chars[i - 1];
            if p.is_alphanumeric() || matches!(p, '_' | '-' | '.' | '/' | '@' | '+' | '`' | '\\') {
                i += 1;
                continue;
            }
        }
        let start = i + 1;
        let mut end = start;
        while end < chars.len() && is_login_char(chars[end]) {
            end += 1;
        }
        let login: String = chars[start..end]
            .iter()
            .collect::<String>()
            .trim_end_matches('-')
            .to_string();
        // `@alice@example.com` is an address, not a mention.
        if end < chars.len() && chars[end] == '@' {
            i = end;
            continue;
        }
        if !is_github_login(&login) {
            i = end.max(i + 1);
            continue;
        }
        if end + 1 < chars.len() && chars[end] == '/' && is_login_char(chars[end + 1]) {
            let s = end + 1;
            let mut e = s;
            while e < chars.len() && (is_login_char(chars[e]) || chars[e] == '.') {
                e += 1;
            }
            let slug: String = chars[s..e]
                .iter()
                .collect::<String>()
                .trim_end_matches(['.', '-'])
                .to_string();
            if !slug.is_empty() {
                out.push(Mention::Team { org: login, slug });
            }
            i = e;
            continue;
        }
        // Like GitHub, not when a dot and a word character follow: the name is
        // the start of a domain (`x=@example.com`, `@acme.io`), not a login.
        let mut after_dots = end;
        while after_dots < chars.len() && chars[after_dots] == '.' {
            after_dots += 1;
        }
        if after_dots > end
            && after_dots < chars.len()
            && (chars[after_dots].is_ascii_alphanumeric() || chars[after_dots] == '_')
        {
            i = after_dots;
            continue;
        }
        out.push(Mention::User(login));
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(body: &str) -> Vec<String> {
        extract(body)
            .into_iter()
            .map(|m| match m {
                Mention::User(u) => u,
                Mention::Team { org, slug } => format!("{org}/{slug}"),
            })
            .collect()
    }

    #[test]
    fn plain_mentions_in_order_without_duplicates() {
        assert_eq!(
            users("@alice please look, cc @Bob and @alice."),
            vec!["alice", "Bob"]
        );
        assert_eq!(
            users("(@carol) @dave, @erin: @frank!"),
            vec!["carol", "dave", "erin", "frank"]
        );
    }

    #[test]
    fn not_in_emails_code_or_quotes() {
        let body = "mail bob@example.com or @carol@example.com\n\
                    `@inline` and ``code with ` @tick``\n\
                    > @quoted said\n\
                    ```\n@fenced\n```\n\
                    ~~~rust\n@tilde\n~~~\n\
                    \n    @indented\n\
                    real @zoe";
        assert_eq!(users(body), vec!["zoe"]);
    }

    #[test]
    fn not_in_addresses_whatever_precedes_the_at_sign() {
        // RFC 5322 allows `=`, `?`, `%`, `'`… at the end of a local part; the
        // name after the `@` is a domain, which GitHub does not link either.
        assert!(extract("write to jane=@example.com or ops%@acme.io").is_empty());
        assert!(extract("(see @example.com)").is_empty());
        assert_eq!(
            users("thanks @alice. and @bob... ok @carol.\n@dave.."),
            vec!["alice", "bob", "carol", "dave"]
        );
    }

    #[test]
    fn unmatched_backtick_is_literal() {
        assert_eq!(users("a ` stray @amy"), vec!["amy"]);
    }

    #[test]
    fn teams() {
        assert_eq!(
            extract("ping @acme/backend-team and @acme/Backend-Team"),
            vec![Mention::Team {
                org: "acme".into(),
                slug: "backend-team".into()
            }]
        );
    }

    #[test]
    fn invalid_logins_are_not_mentions() {
        assert!(extract("@-bad @ alone @@ x@y").is_empty());
        assert_eq!(users("trailing @amy- dash"), vec!["amy"]);
        assert_eq!(users("unicode ünïcode@x @émile @ok"), vec!["ok"]);
    }
}
