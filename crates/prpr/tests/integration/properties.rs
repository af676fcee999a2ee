//! Property tests for every parser of outside input: the signature headers,
//! form decoding, webhook JSON shapes, `@mention` extraction, `MEMBERS.md`
//! lines and Slack escaping. No input may panic; malformed input gets its
//! error; well-formed input always gets through.
//!
//! Case counts are modest (64–256) so the suite stays fast; raise them with
//! `PROPTEST_CASES=10000` when changing a parser.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use prpr::config::members::{SlackUser, is_github_login, parse_members_md};
use prpr::config::{DeliveryMode, NotifyConfig, Secret};
use prpr::github::mentions::{Mention, extract};
use prpr::github::{Event, PayloadError};
use prpr::intake::decode::{self, DecodeError, Encoding};
use prpr::intake::signature::{SignatureError, Verifier};
use prpr::notice::excerpt;
use prpr::rules::{self, PrState};
use prpr::slack::render::{escape, link, quote};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- signature headers ---------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_correct_signature_always_verifies(
        secret in "\\PC{1,40}",
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        upper in any::<bool>(),
        pad in "[ \t]{0,2}",
    ) {
        let v = Verifier::new(Secret::new(secret.clone()), false);
        let mut header = testkit::sign::sha256_header(secret.as_bytes(), &body);
        if upper {
            header = header.to_ascii_uppercase();
        }
        let header = format!("{pad}{header}{pad}");
        prop_assert_eq!(v.verify(Some(header.as_bytes()), None, &body), Ok(()));
    }

    #[test]
    fn any_change_to_body_or_signature_is_a_mismatch(
        secret in "\\PC{1,40}",
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        hex_at in 7usize..71,
    ) {
        let v = Verifier::new(Secret::new(secret.clone()), false);
        let header = testkit::sign::sha256_header(secret.as_bytes(), &body);
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        prop_assert_eq!(v.verify(Some(header.as_bytes()), None, &changed), Err(SignatureError::Mismatch));
        // One hex digit changed (still valid hex).
        let mut h = header.into_bytes();
        h[hex_at] = if h[hex_at] == b'0' { b'1' } else { b'0' };
        prop_assert_eq!(v.verify(Some(&h), None, &body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn arbitrary_header_bytes_never_panic_and_never_pass(
        header in proptest::collection::vec(any::<u8>(), 0..100),
        sha1 in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..60)),
        allow_sha1 in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let v = Verifier::new(Secret::new("s3cret"), allow_sha1);
        let r = v.verify(Some(&header), sha1.as_deref(), &body);
        prop_assert!(
            matches!(r, Err(SignatureError::Malformed { header: "X-Hub-Signature-256", .. } | SignatureError::Mismatch)),
            "{:?}", r
        );
        if let Some(s1) = &sha1 {
            let r = v.verify(None, Some(s1), &body);
            if allow_sha1 {
                prop_assert!(matches!(r, Err(SignatureError::Malformed { header: "X-Hub-Signature", .. } | SignatureError::Mismatch)), "{:?}", r);
            } else {
                prop_assert_eq!(r, Err(SignatureError::Sha1NotAllowed));
            }
        }
    }

    #[test]
    fn wrong_length_or_prefix_is_malformed(
        secret in "[a-z]{1,10}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 1usize..64,
        extra in "[0-9a-f]{1,4}",
        prefix in "(sha1|sha512|md5|sha256x|)",
    ) {
        let v = Verifier::new(Secret::new(secret.clone()), false);
        let good = testkit::sign::sha256_header(secret.as_bytes(), &body);
        let hex = good.strip_prefix("sha256=").unwrap();
        let short = format!("sha256={}", &hex[..64 - cut]);
        let long = format!("{good}{extra}");
        let other = format!("{prefix}={hex}");
        let no_eq = hex.to_string();
        for h in [short, long, other, no_eq] {
            prop_assert!(
                matches!(v.verify(Some(h.as_bytes()), None, &body), Err(SignatureError::Malformed { .. })),
                "{h}"
            );
        }
    }

    #[test]
    fn sha1_only_when_allowed_and_sha256_absent(
        secret in "[ -~]{1,30}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let sha1 = testkit::sign::sha1_header(secret.as_bytes(), &body);
        let allowed = Verifier::new(Secret::new(secret.clone()), true);
        let refused = Verifier::new(Secret::new(secret.clone()), false);
        prop_assert_eq!(allowed.verify(None, Some(sha1.as_bytes()), &body), Ok(()));
        prop_assert_eq!(refused.verify(None, Some(sha1.as_bytes()), &body), Err(SignatureError::Sha1NotAllowed));
        // A SHA-256 header, when present, decides alone.
        let wrong256 = testkit::sign::sha256_header(b"another secret", &body);
        prop_assert_eq!(
            allowed.verify(Some(wrong256.as_bytes()), Some(sha1.as_bytes()), &body),
            Err(SignatureError::Mismatch)
        );
    }
}

// ---- form decoding and content types ---------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_payload_field_comes_back_exactly(
        payload in "\\PC{0,300}",
        before in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,20}"), 0..4),
        after in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,20}"), 0..4),
    ) {
        let mut fields: Vec<(String, String)> = before.into_iter().filter(|(k, _)| k != "payload").collect();
        fields.push(("payload".into(), payload.clone()));
        fields.extend(after);
        let body = serde_urlencoded::to_string(&fields).unwrap();
        let got = decode::payload(Encoding::Form, body.as_bytes()).unwrap();
        prop_assert_eq!(got.as_ref(), payload.as_bytes());
    }

    #[test]
    fn form_without_payload_is_an_error(
        fields in proptest::collection::vec(("[a-z]{1,6}", "\\PC{0,20}"), 0..5),
    ) {
        let fields: Vec<_> = fields.into_iter().filter(|(k, _)| k != "payload").collect();
        let body = serde_urlencoded::to_string(&fields).unwrap();
        prop_assert_eq!(decode::payload(Encoding::Form, body.as_bytes()), Err(DecodeError::NoPayload));
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::payload(Encoding::Form, &body);
        let json = decode::payload(Encoding::Json, &body).unwrap();
        prop_assert_eq!(json.as_ref(), &body[..]);
    }

    #[test]
    fn content_types_any_case_with_parameters(
        json_type in any::<bool>(),
        case_mask in proptest::collection::vec(any::<bool>(), 33),
        params in "(; ?[a-z]{1,8}=[a-z0-9-]{1,8}){0,2}",
        pad in " {0,2}",
    ) {
        let base = if json_type { "application/json" } else { "application/x-www-form-urlencoded" };
        let cased: String = base
            .chars()
            .zip(case_mask.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let value = format!("{pad}{cased}{params}");
        let want = if json_type { Encoding::Json } else { Encoding::Form };
        prop_assert_eq!(decode::encoding(Some(value.as_bytes())), Ok(want));
    }

    #[test]
    fn arbitrary_content_types_never_panic(ct in proptest::collection::vec(any::<u8>(), 0..200)) {
        match decode::encoding(Some(&ct)) {
            Ok(_) => {
                let media = String::from_utf8_lossy(&ct).split(';').next().unwrap().trim().to_ascii_lowercase();
                prop_assert!(media == "application/json" || media == "application/x-www-form-urlencoded", "{media}");
            }
            Err(DecodeError::UnsupportedType(shown)) => prop_assert!(shown.chars().count() <= 100),
            Err(DecodeError::MissingType) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}

// ---- webhook JSON shapes ---------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (event header, fixture) for every event prpr has a rule for.
const FIXTURES: &[(&str, &str)] = &[
    ("pull_request", "pull_request.opened"),
    ("pull_request", "pull_request.review_requested.user"),
    ("pull_request", "pull_request.closed.unmerged"),
    ("pull_request", "pull_request.ready_for_review"),
    ("pull_request_review", "pull_request_review.submitted"),
    ("pull_request_review", "pull_request_review.dismissed"),
    ("issue_comment", "issue_comment.created.issue"),
    (
        "pull_request_review_comment",
        "pull_request_review_comment.created",
    ),
];

/// Fields the parser cannot do without, per event, as JSON paths.
fn required(event: &str) -> &'static [&'static str] {
    match event {
        "pull_request" => &[
            "action",
            "pull_request.number",
            "pull_request.title",
            "pull_request.html_url",
            "pull_request.user.login",
            "repository.full_name",
            "repository.owner.login",
            "sender.login",
        ],
        "pull_request_review" => &[
            "action",
            "review.user.login",
            "review.state",
            "review.html_url",
            "pull_request.number",
            "pull_request.user",
            "repository",
            "sender",
        ],
        "issue_comment" => &[
            "action",
            "issue.number",
            "issue.title",
            "issue.user.login",
            "comment.html_url",
            "comment.user",
            "repository.full_name",
            "sender.login",
        ],
        _ => &[
            "action",
            "comment.html_url",
            "comment.user.login",
            "pull_request.title",
            "repository.owner",
            "sender",
        ],
    }
}

fn notify_config() -> NotifyConfig {
    let mut cfg = NotifyConfig {
        channel: Some("C0GENERAL1".into()),
        merged_channel: Some("C0MERGED01".into()),
        delivery: DeliveryMode::Both,
        ..NotifyConfig::default()
    };
    for (login, id) in [("octocat", "U0OCTOCAT1"), ("Codertocat", "U0CODERTO1")] {
        cfg.members.insert(login, SlackUser::Id(id.into()));
    }
    cfg
}

/// Parses, and when that succeeds runs everything downstream that reads the
/// event (subject, rules), none of which may panic.
fn parse_and_use(event: &str, body: &[u8]) -> Result<Event, PayloadError> {
    let parsed = Event::parse(event, body);
    if let Ok(e) = &parsed {
        let _ = e.subject();
        let d = rules::decide(e, &PrState::default(), &notify_config());
        for n in &d.notifications {
            assert!(!n.channel.is_empty());
        }
    }
    parsed
}

fn value_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

/// A JSON value of any shape (bounded depth).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value whose JSON type differs from `v`'s.
fn other_type(v: &Value, pick: usize) -> Value {
    let candidates = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!("text"),
        json!([1, 2]),
        json!({"a": 1}),
    ];
    let same = |c: &Value| {
        std::mem::discriminant(c) == std::mem::discriminant(v) || (c.is_number() && v.is_number())
    };
    let others: Vec<&Value> = candidates.iter().filter(|c| !same(c)).collect();
    others[pick % others.len()].clone()
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        event in "(ping|pull_request|pull_request_review|issue_comment|pull_request_review_comment|push|issues)",
    ) {
        let _ = parse_and_use(&event, &body);
    }

    #[test]
    fn arbitrary_json_never_panics_and_non_objects_are_rejected(
        v in json_value(),
        which in 0..FIXTURES.len(),
    ) {
        let event = FIXTURES[which].0;
        let body = serde_json::to_vec(&v).unwrap();
        let r = parse_and_use(event, &body);
        if !v.is_object() && !v.is_array() {
            prop_assert!(r.is_err(), "{v} parsed as {event}");
        }
        let _ = parse_and_use("push", &body);
    }

    #[test]
    fn extra_fields_anywhere_are_ignored(
        which in 0..FIXTURES.len(),
        extras in proptest::collection::vec((0usize..10_000, "x_[a-z]{1,8}", json_value()), 1..6),
    ) {
        let (event, name) = FIXTURES[which];
        let original = fixture(name);
        let mut v = original.clone();
        let objects = object_paths(&v);
        for (pick, key, extra) in extras {
            let path = &objects[pick % objects.len()];
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            if let Some(Value::Object(m)) = value_at(&mut v, &refs) {
                m.insert(key, extra);
            }
        }
        let before = Event::parse(event, &serde_json::to_vec(&original).unwrap()).unwrap();
        let after = parse_and_use(event, &serde_json::to_vec(&v).unwrap());
        prop_assert!(after.is_ok(), "{:?}", after);
        prop_assert_eq!(after.unwrap().subject(), before.subject());
    }

    #[test]
    fn a_missing_required_field_names_its_path(which in 0..FIXTURES.len(), pick in 0usize..100) {
        let (event, name) = FIXTURES[which];
        let fields = required(event);
        let path: Vec<&str> = fields[pick % fields.len()].split('.').collect();
        let mut v = fixture(name);
        let (last, parent) = path.split_last().unwrap();
        let removed = value_at(&mut v, parent).and_then(Value::as_object_mut).and_then(|m| m.remove(*last));
        prop_assert!(removed.is_some(), "fixture {name} has {path:?}");
        match parse_and_use(event, &serde_json::to_vec(&v).unwrap()) {
            Err(PayloadError::Shape { path: p, message, .. }) => {
                let want = if parent.is_empty() { ".".to_string() } else { parent.join(".") };
                prop_assert_eq!(p, want);
                prop_assert_eq!(message, format!("missing field `{last}`"));
            }
            other => prop_assert!(false, "removing {path:?}: {other:?}"),
        }
    }

    #[test]
    fn an_oddly_typed_required_field_names_its_path(
        which in 0..FIXTURES.len(),
        pick in 0usize..100,
        kind in 0usize..7,
    ) {
        let (event, name) = FIXTURES[which];
        let fields = required(event);
        let path: Vec<&str> = fields[pick % fields.len()].split('.').collect();
        let mut v = fixture(name);
        let slot = value_at(&mut v, &path).unwrap();
        *slot = other_type(slot, kind);
        match parse_and_use(event, &serde_json::to_vec(&v).unwrap()) {
            Err(PayloadError::Shape { path: p, .. }) => {
                // The error points at the field or inside it.
                prop_assert!(p.starts_with(&path.join(".")), "{p} vs {path:?}");
            }
            other => prop_assert!(false, "retyping {path:?}: {other:?}"),
        }
    }

    #[test]
    fn any_field_retyped_or_removed_never_panics(
        which in 0..FIXTURES.len(),
        pick in 0usize..100_000,
        kind in 0usize..8,
    ) {
        let (event, name) = FIXTURES[which];
        let mut v = fixture(name);
        let paths = all_paths(&v);
        let path = &paths[pick % paths.len()];
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        if kind == 7 {
            let (last, parent) = refs.split_last().unwrap();
            if let Some(Value::Object(m)) = value_at(&mut v, parent) {
                m.remove(*last);
            }
        } else if let Some(slot) = value_at(&mut v, &refs) {
            *slot = other_type(slot, kind);
        }
        let _ = parse_and_use(event, &serde_json::to_vec(&v).unwrap());
    }
}

/// Paths of every object member (not array elements), depth-first.
fn all_paths(v: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                prefix.push(k.clone());
                out.push(prefix.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
    }
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// Paths of every object, the root included.
fn object_paths(v: &Value) -> Vec<Vec<String>> {
    let root = v.clone();
    let mut out = vec![Vec::new()];
    for p in all_paths(&root) {
        let mut r = root.clone();
        let refs: Vec<&str> = p.iter().map(String::as_str).collect();
        if value_at(&mut r, &refs).is_some_and(|x| x.is_object()) {
            out.push(p);
        }
    }
    out
}

// ---- @mention extraction -----------------------------------------------------------

fn login() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]{1,8}(-[a-zA-Z0-9]{1,6}){0,2}"
}

/// A word of prose: ASCII, accented, CJK or emoji, never `@`, backticks or `>`.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z]{1,10}",
        Just("émile".to_string()),
        Just("naïve".to_string()),
        Just("日本語".to_string()),
        Just("Привет".to_string()),
        Just("🎉".to_string()),
        Just("(see".to_string()),
        Just("done.".to_string()),
        Just("a/b".to_string()),
    ]
}

/// Characters RFC 5322 allows in the local part of an address (`atext`),
/// backtick aside (it would open a code span).
fn email_local() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9!#$%&'*+/=?^_{|}~-]{1,6}(\\.[a-zA-Z0-9!#$%&'*+/=?^_{|}~-]{1,6}){0,2}"
}

/// A place a mention of `name` must NOT be found: an e-mail address, code,
/// or a quoted line.
fn hidden(name: String) -> impl Strategy<Value = String> {
    let n = name.clone();
    prop_oneof![
        // e-mail addresses whose domain (or local part) is the name
        (email_local(), "[a-z]{2,6}")
            .prop_map(move |(local, tld)| format!("write to {local}@{n}.{tld} today")),
        Just(format!("mail <{name}@example.com>")),
        Just(format!("@{name}@example.com is my address")),
        Just(format!("ünïcödé@{name}.org")),
        // inline code
        Just(format!("run `git blame @{name}` now")),
        Just(format!("``code ` with @{name} inside``")),
        // fenced and indented code blocks
        Just(format!("```\ncc @{name}\n```")),
        Just(format!(
            "~~~~ruby\n# @{name}\n```\nstill code @{name}\n~~~~"
        )),
        Just(format!("    @{name} indented code")),
        Just(format!("\tx = \"@{name}\"")),
        // quoted lines
        Just(format!("> @{name} wrote this")),
        Just(format!("   > quoting @{name}")),
        Just(format!(">@{name}")),
        Just(format!("> > nested @{name}")),
    ]
}

/// A prose paragraph with the given visible mentions among words.
fn prose(mentions: Vec<String>) -> impl Strategy<Value = String> {
    let n = mentions.len();
    (
        proptest::collection::vec(word(), n + 1..n + 6),
        proptest::collection::vec(
            prop_oneof![
                Just(""),
                Just(","),
                Just("."),
                Just(":"),
                Just("!"),
                Just(")")
            ],
            n,
        ),
    )
        .prop_map(move |(words, punct)| {
            let mut out = Vec::new();
            for (i, w) in words.into_iter().enumerate() {
                if i < n {
                    out.push(format!("@{}{}", mentions[i], punct[i]));
                }
                out.push(w);
            }
            out.join(" ")
        })
}

type MentionCase = (
    Vec<String>,
    Vec<String>,
    Vec<String>,
    String,
    bool,
    Vec<String>,
);

/// Visible logins, hidden names (`zz<i>hidden`, never visible), a block hiding
/// each, the prose paragraph with the visible mentions, and filler words.
fn mention_body() -> impl Strategy<Value = MentionCase> {
    (proptest::collection::vec(login(), 0..4), 0usize..5).prop_flat_map(|(visible, k)| {
        let names: Vec<String> = (0..k).map(|i| format!("zz{i}hidden")).collect();
        let blocks: Vec<BoxedStrategy<String>> =
            names.iter().map(|n| hidden(n.clone()).boxed()).collect();
        (
            Just(visible.clone()),
            Just(names),
            blocks,
            prose(visible),
            any::<bool>(),
            proptest::collection::vec(word(), 1..4),
        )
    })
}

fn mention_names(found: &[Mention]) -> Vec<String> {
    found
        .iter()
        .map(|m| match m {
            Mention::User(u) => u.to_ascii_lowercase(),
            Mention::Team { org, slug } => format!("{org}/{slug}").to_ascii_lowercase(),
        })
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn extraction_never_panics_and_returns_valid_logins(body in "\\PC{0,200}|[@`>~ \\n\ta-z.-]{0,200}") {
        for m in extract(&body) {
            match m {
                Mention::User(u) => prop_assert!(is_github_login(&u), "{u:?} from {body:?}"),
                Mention::Team { org, slug } => {
                    prop_assert!(is_github_login(&org), "{org:?}");
                    prop_assert!(!slug.is_empty());
                }
            }
        }
    }

    #[test]
    fn mentions_in_prose_are_found_in_order_and_hidden_ones_never(
        (visible, hidden_names, blocks, text, prose_first, filler) in mention_body(),
    ) {
        // Paragraphs separated by blank lines; the visible prose first or last.
        let mut parts = Vec::new();
        if prose_first {
            parts.push(text.clone());
        }
        for b in &blocks {
            parts.push(b.clone());
            parts.push(filler.join(" "));
        }
        if !prose_first {
            parts.push(text.clone());
        }
        let body = parts.join("\n\n");
        let found = mention_names(&extract(&body));
        for h in &hidden_names {
            prop_assert!(!found.iter().any(|f| f.contains(h.as_str())), "{h} found in {body:?}: {found:?}");
        }
        let mut want: Vec<String> = Vec::new();
        for v in &visible {
            let v = v.to_ascii_lowercase();
            if !want.contains(&v) {
                want.push(v);
            }
        }
        prop_assert_eq!(found, want, "body: {:?}", body);
    }

    #[test]
    fn addresses_never_yield_a_mention(
        local in email_local(),
        domain in "[a-z][a-z0-9-]{0,10}",
        tld in "[a-z]{2,6}",
        before in prop_oneof![Just(""), Just(" "), Just("("), Just("<"), Just("mailto:"), Just("ü")],
        after in prop_oneof![Just(""), Just(" "), Just(")"), Just(">"), Just("."), Just(",")],
    ) {
        let body = format!("contact {before}{local}@{domain}.{tld}{after} please");
        let found = extract(&body);
        prop_assert!(found.is_empty(), "{body:?} → {found:?}");
    }
}

// ---- MEMBERS.md ------------------------------------------------------------------

fn slack_value() -> impl Strategy<Value = (String, SlackUser)> {
    prop_oneof![
        "U[A-Z0-9]{8,10}".prop_map(|id| (id.clone(), SlackUser::Id(id))),
        "W[A-Z0-9]{8,10}".prop_map(|id| (format!("<@{id}>"), SlackUser::Id(id))),
        "[a-z][a-z0-9._]{0,15}".prop_map(|h| (format!("@{h}"), SlackUser::Handle(h))),
    ]
}

fn good_line() -> impl Strategy<Value = (String, String, SlackUser)> {
    (
        login(),
        slack_value(),
        prop_oneof![Just(" * "), Just("* "), Just("- "), Just("  -   ")],
        prop_oneof![Just(": "), Just(":"), Just(" : "), Just(":\t")],
        " {0,2}",
    )
        .prop_map(|(login, (text, user), bullet, sep, trail)| {
            (format!("{bullet}@{login}{sep}{text}{trail}"), login, user)
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn members_md_never_panics_and_error_lines_are_in_range(text in "\\PC{0,300}|[*@: \\n\r-]{0,100}") {
        let (entries, errors) = parse_members_md(&text);
        let lines = text.lines().count();
        for e in &errors {
            prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            prop_assert!(!e.message.is_empty());
        }
        for (login, _) in &entries {
            prop_assert!(is_github_login(login), "{login:?}");
        }
    }

    #[test]
    fn good_lines_always_load_whatever_surrounds_them(
        lines in proptest::collection::vec(
            prop_oneof![
                good_line().prop_map(Some),
                "[^\\n]{0,40}".prop_map(|junk| Some((junk, String::new(), SlackUser::Handle(String::new())))),
                Just(None),
            ],
            0..20,
        ),
    ) {
        let mut text = String::new();
        let mut good = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            match l {
                Some((line, login, user)) if !login.is_empty() => {
                    good.push((i + 1, login.clone(), user.clone()));
                    text.push_str(line);
                }
                Some((junk, _, _)) => text.push_str(junk),
                None => {}
            }
            text.push('\n');
        }
        let (entries, errors) = parse_members_md(&text);
        for (line, login, user) in &good {
            prop_assert!(
                entries.iter().any(|(l, u)| l == login && u == user),
                "line {line} (@{login}) did not load from {text:?}: {entries:?}"
            );
            prop_assert!(!errors.iter().any(|e| e.line == *line), "good line {line} reported: {errors:?}");
        }
    }
}

// ---- Slack escaping ----------------------------------------------------------------

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn escaped_text_has_no_control_characters_and_round_trips(
        text in "\\PC{0,200}|[<>&;a-z!@#]{0,60}|(&(lt|gt|amp);){0,5}",
    ) {
        let e = escape(&text);
        prop_assert!(!e.contains('<') && !e.contains('>'), "{e:?}");
        // Every & starts one of the three entities.
        prop_assert!(e.match_indices('&').all(|(i, _)| ["&amp;", "&lt;", "&gt;"].iter().any(|ent| e[i..].starts_with(ent))));
        prop_assert_eq!(unescape(&e), text);
    }

    #[test]
    fn links_and_quotes_cannot_be_broken_out_of(
        url in "\\PC{0,60}|[<>|a-z:/]{0,30}",
        label in "\\PC{0,60}|[<>|&a-z]{0,30}",
        body in "\\PC{0,300}|[<>&\\na-z]{0,100}",
        lines in 0usize..5,
        max in 1usize..200,
    ) {
        let l = link(&url, &label);
        prop_assert!(l.starts_with('<') && l.ends_with('>'));
        prop_assert!(!l[1..l.len() - 1].contains(['<', '>']), "{l:?}");
        prop_assert_eq!(unescape(l[1..l.len() - 1].split_once('|').unwrap().1), label);
        if let Some(q) = excerpt(&body, lines, max).map(|e| quote(&e)) {
            for line in q.lines() {
                let rest = line.strip_prefix("> ");
                prop_assert!(rest.is_some(), "{line:?}");
                prop_assert!(!rest.unwrap().contains(['<', '>']), "{line:?}");
            }
        }
    }
}
