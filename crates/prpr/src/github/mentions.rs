//! Finding `@login` and `@org/team` mentions in comment Markdown the way
//! GitHub does.
//!
//! GitHub renders the comment (CommonMark with its extensions) and then links
//! `@name` only in the text of the rendered page: never inside code, raw HTML
//! (an `<!-- cc @bob -->` comment is invisible and notifies nobody) or links.
//! A hand-written line scanner cannot know that an indented line continues a
//! list item, that a code span runs across a line break, or where an HTML
//! comment ends; a CommonMark parser ([`pulldown_cmark`]) does, so mentions are
//! looked for only in its text events.
//!
//! One choice of ours on top of GitHub's: nothing inside a block quote counts.
//! Quoted text repeats someone else's words, and would tell people again about
//! something they were already told.
//!
//! The scan is linear in the size of the comment: the parser is, each text run
//! is read once, and duplicates are found with a set.

use std::collections::HashSet;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::config::members::is_github_login;

/// One mention, in the order it first appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    User(String),
    Team { org: String, slug: String },
}

impl Mention {
    /// The case-insensitive identity: `@Alice` and `@alice` are one person.
    fn key(&self) -> String {
        match self {
            Mention::User(u) => u.to_ascii_lowercase(),
            Mention::Team { org, slug } => {
                format!("{}/{}", org.to_ascii_lowercase(), slug.to_ascii_lowercase())
            }
        }
    }
}

/// Every distinct mention in `body` (case-insensitive), first occurrence first.
pub fn extract(body: &str) -> Vec<Mention> {
    extract_counting(body).0
}

/// [`extract`], and how much work it did: parser events handled plus
/// characters examined by the mention scan. Why: the scan must stay linear in
/// the comment's size (a quadratic one once held the store's write lock for
/// 14 s on a comment of 100,000 mentions), and a count proves that without a
/// timing assertion.
pub fn extract_counting(body: &str) -> (Vec<Mention>, u64) {
    let mut found = Mentions::default();
    // Inside any of these, text is not prose that GitHub would link.
    let mut hidden_depth = 0usize;
    // Consecutive text events form one text node of the rendered page; the
    // parser may split a node (at `*`, `_`, `[`…), so they are joined first.
    let mut run = String::new();
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_GFM;
    for event in Parser::new_ext(body, options) {
        found.work += 1;
        match event {
            Event::Text(text) => {
                if hidden_depth == 0 {
                    run.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if hidden_depth == 0 {
                    run.push('\n');
                }
            }
            other => {
                found.scan(&run);
                run.clear();
                match other {
                    Event::Start(tag) if hides(&tag) => hidden_depth += 1,
                    Event::End(tag) if hides_end(tag) => {
                        hidden_depth = hidden_depth.saturating_sub(1)
                    }
                    // Code spans, inline and block HTML, math: never prose.
                    _ => {}
                }
            }
        }
    }
    found.scan(&run);
    (found.list, found.work)
}

/// Tags whose content is not linked by GitHub (code, links, images), or that
/// we leave out on purpose (block quotes).
fn hides(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::CodeBlock(_)
            | Tag::BlockQuote(_)
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::HtmlBlock
            | Tag::MetadataBlock(_)
    )
}

fn hides_end(tag: TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::CodeBlock
            | TagEnd::BlockQuote(_)
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::HtmlBlock
            | TagEnd::MetadataBlock(_)
    )
}

#[derive(Default)]
struct Mentions {
    list: Vec<Mention>,
    seen: HashSet<String>,
    /// Events and characters handled (see [`extract_counting`]).
    work: u64,
}

impl Mentions {
    fn push(&mut self, m: Mention) {
        if self.seen.insert(m.key()) {
            self.list.push(m);
        }
    }

    /// Adds the mentions of one text node, with GitHub's rules for where a
    /// mention starts and ends.
    fn scan(&mut self, text: &str) {
        if !text.contains('@') {
            return;
        }
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            self.work += 1;
            if chars[i] != '@' {
                i += 1;
                continue;
            }
            // Not after a word character or address/path punctuation:
            // `bob@example.com`, `x/@y`, `a.@b`.
            if i > 0 {
                let p = chars[i - 1];
                if p.is_alphanumeric()
                    || matches!(p, '_' | '-' | '.' | '/' | '@' | '+' | '`' | '\\')
                {
                    i += 1;
                    continue;
                }
            }
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && is_login_char(chars[end]) {
                end += 1;
                self.work += 1;
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
                    self.work += 1;
                }
                let slug: String = chars[s..e]
                    .iter()
                    .collect::<String>()
                    .trim_end_matches(['.', '-'])
                    .to_string();
                if !slug.is_empty() {
                    self.push(Mention::Team { org: login, slug });
                }
                i = e;
                continue;
            }
            // Like GitHub, not when a dot and a word character follow: the
            // name is the start of a domain (`x=@example.com`, `@acme.io`).
            let mut after_dots = end;
            while after_dots < chars.len() && chars[after_dots] == '.' {
                after_dots += 1;
                self.work += 1;
            }
            if after_dots > end
                && after_dots < chars.len()
                && (chars[after_dots].is_ascii_alphanumeric() || chars[after_dots] == '_')
            {
                i = after_dots;
                continue;
            }
            self.push(Mention::User(login));
            i = end;
        }
    }
}

fn is_login_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<String> {
        extract(body)
            .into_iter()
            .map(|m| match m {
                Mention::User(u) => u,
                Mention::Team { org, slug } => format!("{org}/{slug}"),
            })
            .collect()
    }

    /// Real comment shapes and who GitHub (and prpr) notifies for each.
    #[test]
    fn real_comment_shapes() {
        let table: &[(&str, &str, &[&str])] = &[
            // The three shapes the hand-written scanner got wrong.
            (
                "list continuation, which GitHub links",
                "1. Step\n\n    @alice please check",
                &["alice"],
            ),
            (
                "an HTML comment is not rendered",
                "<!-- cc @bob -->\nthanks",
                &[],
            ),
            (
                "a code span across two lines",
                "run `git blame\n@carol` please",
                &[],
            ),
            (
                "an inline HTML comment in a paragraph",
                "done <!-- @bob later --> @dave",
                &["dave"],
            ),
            (
                "a multi-line HTML comment",
                "<!--\nreviewers: @bob\n-->\n@erin",
                &["erin"],
            ),
            (
                "nested lists",
                "- top\n  - nested @alice\n    1. deeper @bob",
                &["alice", "bob"],
            ),
            (
                "a table",
                "| who | what |\n|---|---|\n| @alice | api |\n| `@bob` | docs |",
                &["alice"],
            ),
            ("a heading", "## cc @alice", &["alice"]),
            ("strong emphasis around it", "**@alice** look", &["alice"]),
            (
                "emphasis and strike",
                "_@bob_ and ~~@carol~~",
                &["bob", "carol"],
            ),
            (
                "punctuation after it",
                "@alice, @bob. (@carol) @dave: @erin!",
                &["alice", "bob", "carol", "dave", "erin"],
            ),
            (
                "Unicode around it",
                "merci @alice… 日本語 @bob さん 🎉@carol",
                &["alice", "bob", "carol"],
            ),
            (
                "a link's text and URL",
                "[@alice](https://x.io/@bob) @carol",
                &["carol"],
            ),
            ("an autolink", "<https://github.com/@alice> ok", &[]),
            ("an e-mail autolink", "<alice@example.com>", &[]),
            ("an image's alt text", "![@alice](a.png)", &[]),
            ("a block quote", "> @alice said\n\n@bob", &["bob"]),
            (
                "a lazy continuation of a quote",
                "> @alice said\nand @bob",
                &[],
            ),
            ("a fenced block", "```\n@alice\n```\n@bob", &["bob"]),
            (
                "a tilde fence with a backtick fence inside",
                "~~~~\n```\n@alice\n~~~~",
                &[],
            ),
            ("an unclosed fence hides the rest", "```\n@alice", &[]),
            ("a task list", "- [ ] ask @alice", &["alice"]),
            (
                "HTML tags around prose (rendered)",
                "<details>\n<summary>x</summary>\n\n@alice\n\n</details>",
                &["alice"],
            ),
            (
                "inline tags",
                "<b>hi</b> @alice <kbd>@bob</kbd>",
                &["alice", "bob"],
            ),
            ("a team", "ping @acme/backend-team!", &["acme/backend-team"]),
        ];
        for (what, body, want) in table {
            assert_eq!(names(body), *want, "{what}: {body:?}");
        }
    }

    #[test]
    fn plain_mentions_in_order_without_duplicates() {
        assert_eq!(
            names("@alice please look, cc @Bob and @alice."),
            vec!["alice", "Bob"]
        );
    }

    #[test]
    fn not_in_emails_code_or_quotes() {
        let body = "mail bob@example.com or @carol@example.com\n\
                    `@inline` and ``code with ` @tick``\n\
                    > @quoted said\n\
                    \n```\n@fenced\n```\n\
                    ~~~rust\n@tilde\n~~~\n\
                    \n    @indented\n\
                    \nreal @zoe";
        assert_eq!(names(body), vec!["zoe"]);
    }

    #[test]
    fn not_in_addresses_whatever_precedes_the_at_sign() {
        assert!(extract("write to jane=@example.com or ops%@acme.io").is_empty());
        assert!(extract("(see @example.com)").is_empty());
        assert_eq!(
            names("thanks @alice. and @bob... ok @carol.\n@dave.."),
            vec!["alice", "bob", "carol", "dave"]
        );
    }

    #[test]
    fn teams_dedup_case_insensitively() {
        assert_eq!(
            extract("ping @acme/backend-team and @acme/Backend-Team"),
            vec![Mention::Team {
                org: "acme".into(),
                slug: "backend-team".into()
            }]
        );
    }

    /// Linear by count, not by clock: doubling a storm of unmapped mentions
    /// (the shape that once took 14 s) doubles the work, and the work per
    /// byte is small and the same at every size.
    #[test]
    fn the_scan_is_linear_in_the_comment_size() {
        let storm = |n: usize| -> String { (0..n).map(|i| format!("@stranger{i} ")).collect() };
        let (small, big) = (storm(50_000), storm(100_000));
        let (found_small, work_small) = extract_counting(&small);
        let (found_big, work_big) = extract_counting(&big);
        assert_eq!((found_small.len(), found_big.len()), (50_000, 100_000));
        let per_byte = |work: u64, body: &str| work as f64 / body.len() as f64;
        let (a, b) = (per_byte(work_small, &small), per_byte(work_big, &big));
        assert!(
            b <= a * 1.1,
            "work per byte grew with size: {a:.3} → {b:.3}"
        );
        assert!(b < 3.0, "{b:.3} units of work per byte");
        // Mentions split into many text nodes (emphasis, lines) scale too.
        let lines = |n: usize| -> String { (0..n).map(|i| format!("_@u{i}_ x\n")).collect() };
        let (l1, l2) = (lines(20_000), lines(40_000));
        let (w1, w2) = (extract_counting(&l1).1, extract_counting(&l2).1);
        assert!(
            per_byte(w2, &l2) <= per_byte(w1, &l1) * 1.1,
            "{w1} → {w2} for twice the lines"
        );
    }

    #[test]
    fn invalid_logins_are_not_mentions() {
        assert!(extract("@-bad @ alone @@ x@y").is_empty());
        // Enterprise managed users are `handle_shortcode`.
        assert_eq!(names("@alice_acme"), vec!["alice_acme"]);
        assert_eq!(names("trailing @amy- dash"), vec!["amy"]);
        assert_eq!(names("unicode ünïcode@x @émile @ok"), vec!["ok"]);
        let long = "a".repeat(40);
        assert!(extract(&format!("@{long}")).is_empty());
    }
}
