//! Notices to Slack messages: the one place that writes Slack's markup.
//!
//! Every piece of user text (titles, logins, comment excerpts, team names)
//! goes through [`escape`] here and nowhere else: Slack treats `<…>` as links
//! and mentions, so an unescaped PR title like `Fix <!channel>` would ping
//! everyone. Rendering is pure — the same notice always gives the same
//! message — so it happens when a message is sent, and a stored notice can be
//! rendered again (a thread's root card, a digest) without the event.
//!
//! A message is Block Kit `blocks` plus the same content as the plain `text`
//! fallback (push notifications, clients that cannot render blocks).

use serde::{Deserialize, Serialize};

use crate::notice::{
    Address, Card, Digest, DigestPr, NotExpanded, Notice, Place, Pr, PrStatus, ReviewState,
    Verdict, Whom,
};

use super::message::Message;

/// What the outbox holds for one message, as JSON: a notice with its address,
/// or, for rows queued by a prpr before notices were stored as data, the
/// message it rendered then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// One per message being sent, never collected: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Stored {
    /// A thread's root card, rendered from the PR's state when it is sent.
    Root {
        root: RootRef,
    },
    Notice {
        address: Address,
        notice: Notice,
        #[serde(default)]
        place: Place,
    },
    Rendered(Message),
}

/// Which pull request's thread a root row opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRef {
    pub repo: String,
    pub number: u64,
}

impl Stored {
    /// Parses an outbox row's payload.
    pub fn parse(json: &str) -> Result<Stored, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The message, for anything but a root (whose card is read from the
    /// store when it is sent; here it renders as a placeholder line).
    pub fn render(&self) -> Message {
        match self {
            Stored::Root { root } => Message::from_mrkdwn(format!(
                "thread root for {}#{}",
                escape(&root.repo),
                root.number
            )),
            Stored::Notice {
                address, notice, ..
            } => render(address, notice),
            Stored::Rendered(m) => m.clone(),
        }
    }
}

/// Slack's limits: section text, header text, a message's `text`.
pub const MAX_SECTION: usize = 3000;
pub const MAX_HEADER: usize = 150;
pub const MAX_TEXT: usize = 40_000;
/// Bounds on single user strings, so that even a message made of several
/// of them stays within [`MAX_SECTION`] with its links intact.
const MAX_TITLE: usize = 300;
const MAX_NAME: usize = 100;
const MAX_REASON: usize = 1200;

/// The message for `notice`, addressed as `address` says.
pub fn render(address: &Address, notice: &Notice) -> Message {
    render_in(address, notice, None)
}

/// As [`render`], with a link to the PR's channel thread (for a DM about a
/// PR that has one).
pub fn render_in(address: &Address, notice: &Notice, thread_link: Option<&str>) -> Message {
    if let Notice::Digest(d) = notice {
        return digest(d);
    }
    let mut text = render_text(address, notice);
    if let (Some(url), Some(_)) = (thread_link, notice.pr()) {
        text.push('\n');
        text.push_str(&link(url, "Discussion in the channel thread"));
    }
    Message::from_mrkdwn(fit(&text, MAX_SECTION))
}

/// A thread's root: the PR, where it stands, and each reviewer's state.
pub fn card(card: &Card) -> Message {
    let pr = &card.pr;
    let header = clip(
        &format!("{}#{} {}", pr.repo, pr.number, pr.title),
        MAX_HEADER,
    );
    let (icon, status) = match card.status {
        PrStatus::Open => (":large_green_circle:", "Open"),
        PrStatus::Draft => (":white_circle:", "Draft"),
        PrStatus::Merged => (":large_purple_circle:", "Merged"),
        PrStatus::Closed => (":red_circle:", "Closed"),
    };
    let mut line = format!(
        "{} · {icon} *{status}* · by @{}",
        pr_link(pr),
        escape(&clip(&pr.author, MAX_NAME))
    );
    if let Some((added, deleted)) = pr.size {
        line.push_str(&format!(" · +{added} −{deleted}"));
    }
    if let Some(base) = &card.base {
        line.push_str(&format!(" · into `{}`", code(&clip(base, MAX_NAME))));
    }
    let reviewers: Vec<String> = card
        .reviewers
        .iter()
        .map(|r| {
            let icon = match r.state {
                ReviewState::Pending => ":hourglass_flowing_sand:",
                ReviewState::Approved => ":white_check_mark:",
                ReviewState::ChangesRequested => ":repeat:",
                ReviewState::Commented => ":speech_balloon:",
            };
            let name = escape(&clip(&r.name, MAX_NAME));
            let name = if r.team {
                format!("team *{name}*")
            } else {
                format!("@{name}")
            };
            format!("{icon} {name} {}", state_word(r.state))
        })
        .collect();
    let mut body = fit(&line, MAX_SECTION);
    if !reviewers.is_empty() {
        body.push_str(&format!("\n*Reviewers:* {}", reviewers.join(" · ")));
        body = fit(&body, MAX_SECTION);
    }
    let text = fit(&format!("*{}*\n{body}", escape(&header)), MAX_TEXT);
    let blocks = serde_json::json!([
        { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } },
        { "type": "section", "text": { "type": "mrkdwn", "text": body } }
    ]);
    Message { text, blocks }
}

fn state_word(s: ReviewState) -> &'static str {
    match s {
        ReviewState::Pending => "(pending)",
        ReviewState::Approved => "(approved)",
        ReviewState::ChangesRequested => "(changes requested)",
        ReviewState::Commented => "(commented)",
    }
}

/// `text` cut to at most `max` characters with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Rendered mrkdwn cut to `max` characters without breaking a `<…>` link or
/// mention (a cut inside one would show raw markup or lose the link):
/// the cut moves back to before the unfinished one.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(open) = cut.rfind('<')
        && !cut[open..].contains('>')
    {
        cut.truncate(open);
    }
    // An escape cut in half (`&am`) would show as text.
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

fn render_text(address: &Address, notice: &Notice) -> String {
    let prefix = prefix(address);
    match notice {
        Notice::ReviewRequested {
            pr,
            by,
            whom,
            again,
        } => {
            let (icon, what) = match (whom, again) {
                (Whom::You, false) => (":eyes:", "requested your review".to_string()),
                (Whom::You, true) => (":repeat:", "re-requested your review".to_string()),
                (Whom::Team { org, slug }, _) => (
                    ":eyes:",
                    format!("requested a review from team {}", team_label(org, slug)),
                ),
            };
            format!(
                "{prefix}{icon} @{} {what} on {}\n{}",
                escape(&clip(by, MAX_NAME)),
                pr_link(pr),
                pr_summary(pr)
            )
        }
        Notice::ReviewSubmitted {
            pr,
            reviewer,
            verdict,
            excerpt,
        } => {
            let (icon, verb) = match verdict {
                Verdict::Approved => (":white_check_mark:", "approved"),
                Verdict::ChangesRequested => (":warning:", "requested changes on"),
                Verdict::Commented => (":speech_balloon:", "commented on"),
            };
            let text = format!(
                "{prefix}{icon} @{} {verb} {}\n*{}*",
                escape(&clip(reviewer, MAX_NAME)),
                pr_link(pr),
                escape(&clip(&pr.title, MAX_TITLE))
            );
            with_quote(text, excerpt.as_deref())
        }
        Notice::Mentioned {
            pr,
            by,
            whom,
            excerpt,
        } => {
            let whom = match whom {
                Whom::You => "you".to_string(),
                Whom::Team { org, slug } => format!("team {}", team_label(org, slug)),
            };
            let text = format!(
                "{prefix}:wave: @{} mentioned {whom} on {}\n*{}*",
                escape(&clip(by, MAX_NAME)),
                pr_link(pr),
                escape(&clip(&pr.title, MAX_TITLE))
            );
            with_quote(text, excerpt.as_deref())
        }
        Notice::Merged { pr, by } => format!(
            "{prefix}:tada: {} merged by @{}\n{}",
            pr_link(pr),
            escape(&clip(by, MAX_NAME)),
            pr_summary(pr)
        ),
        Notice::DeployFailed {
            service,
            deployment_id,
            reason,
            rolled_back,
        } => {
            let after = if *rolled_back {
                "ECS is rolling back to the previous deployment."
            } else {
                "ECS did not say it rolled back: the service may be left without running tasks."
            };
            format!(
                "{prefix}:x: *Deployment failed* for {} (deployment `{}`)\n{}\n{after}",
                ecs_service(service),
                code(deployment_id),
                escape(&clip(reason, MAX_REASON))
            )
        }
        Notice::RestartLoop {
            service,
            task_definition,
            stops,
            window_secs,
            stop_code,
            reason,
            explanation,
        } => {
            let mut text = format!(
                "{prefix}:rotating_light: *Restart loop* in {}: {stops} tasks of `{}` stopped within {} (`{}`)\nLatest: {}",
                ecs_service(service),
                code(task_definition),
                minutes(*window_secs),
                code(stop_code),
                escape(&clip(reason, MAX_REASON))
            );
            if let Some(e) = explanation {
                text.push_str(&format!(
                    "\n*Why:* {}. {}",
                    escape(&e.trap),
                    escape(&clip(&e.cause, MAX_REASON))
                ));
                for fix in &e.fix {
                    text.push_str(&format!("\n• {}", escape(&clip(fix, MAX_REASON))));
                }
            }
            text
        }
        Notice::ServiceAction {
            service,
            level,
            event_name,
            reason,
        } => {
            let icon = if level == "ERROR" { ":x:" } else { ":warning:" };
            let mut text = format!(
                "{prefix}{icon} `{}` for {}",
                code(event_name),
                ecs_service(service)
            );
            if let Some(r) = reason {
                text.push_str(&format!(": {}", escape(&clip(r, MAX_REASON))));
            }
            text
        }
        Notice::Deployed {
            service,
            deployment_id,
        } => format!(
            "{prefix}:white_check_mark: Deployed {} (deployment `{}`)",
            ecs_service(service),
            code(deployment_id)
        ),
        Notice::Digest(d) => format!("{prefix}{}", digest_text(d)),
        Notice::TeamNotExpanded { pr, org, slug, why } => {
            let team = team_label(org, slug);
            let why = match why {
                NotExpanded::TooMany { members, max } => format!(
                    "Team {team} has {members} members to ask, more than `team_expand_max` ({max})"
                ),
                NotExpanded::Unavailable => {
                    format!("GitHub would not list the members of team {team}")
                }
            };
            format!(
                "{prefix}:busts_in_silhouette: {why}: nobody was messaged directly about {}.\n{}",
                pr_link(pr),
                pr_summary(pr)
            )
        }
        Notice::Opened { card: c } => {
            let pr = &c.pr;
            format!(
                "{prefix}:new: {} opened by @{}\n{}",
                pr_link(pr),
                escape(&clip(&pr.author, MAX_NAME)),
                pr_summary(pr)
            )
        }
    }
}

/// Slack's limit on blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Blocks a digest page spends besides its repositories and PRs: the header
/// and the footer. [`crate::reminders::digest`] pages by these numbers, and
/// `a_digest_page_never_exceeds_the_block_limit` holds them to [`digest`].
pub const DIGEST_FIXED_BLOCKS: usize = 2;
/// Blocks per repository heading.
pub const DIGEST_REPO_BLOCKS: usize = 1;
/// Blocks per PR.
pub const DIGEST_PR_BLOCKS: usize = 1;

/// One page of a reminder: a header, each repository's heading and one
/// section per PR (link, title, author, age, who it waits for, approvals),
/// and a footer with the count and page.
pub fn digest(d: &Digest) -> Message {
    let mut title = d.title.clone();
    if d.pages > 1 {
        title.push_str(&format!(" ({}/{})", d.page, d.pages));
    }
    let header = clip(&title, MAX_HEADER);
    let mut blocks = vec![serde_json::json!(
        { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } }
    )];
    for r in &d.repos {
        blocks.push(serde_json::json!(
            { "type": "section", "text": { "type": "mrkdwn", "text": repo_heading(&r.repo, r.continued) } }
        ));
        for p in &r.prs {
            blocks.push(serde_json::json!(
                { "type": "section", "text": { "type": "mrkdwn", "text": digest_line(p) } }
            ));
        }
    }
    blocks.push(serde_json::json!(
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": digest_footer(d) } ] }
    ));
    Message {
        text: fit(&digest_text(d), MAX_TEXT),
        blocks: serde_json::Value::Array(blocks),
    }
}

fn repo_heading(repo: &str, continued: bool) -> String {
    let more = if continued { " (continued)" } else { "" };
    format!("*{}*{more}", escape(&clip(repo, MAX_NAME)))
}

fn digest_footer(d: &Digest) -> String {
    let noun = if d.total == 1 {
        "pull request"
    } else {
        "pull requests"
    };
    if d.pages > 1 {
        format!("{} {noun} · message {} of {}", d.total, d.page, d.pages)
    } else {
        format!("{} {noun}", d.total)
    }
}

/// The fallback text of a page: the header, then one line per PR.
fn digest_text(d: &Digest) -> String {
    let mut text = format!("*{}*", escape(&clip(&d.title, MAX_HEADER)));
    for r in &d.repos {
        text.push('\n');
        text.push_str(&repo_heading(&r.repo, r.continued));
        for p in &r.prs {
            text.push('\n');
            text.push_str(&digest_line(p));
        }
    }
    text.push('\n');
    text.push_str(&digest_footer(d));
    text
}

/// `<link|#12> *Title* · by @author · 3d · waiting for <@U…> · 1 approval`.
fn digest_line(p: &DigestPr) -> String {
    let mut line = format!(
        "{} *{}* · by @{}",
        link(&p.pr.link, &format!("#{}", p.pr.number)),
        escape(&clip(&p.pr.title, MAX_TITLE)),
        escape(&clip(&p.pr.author, MAX_NAME))
    );
    if p.draft {
        line.push_str(" · draft");
    }
    if let Some(age) = p.age_secs {
        line.push_str(&format!(" · {} old", age_words(age)));
    }
    if !p.waiting.is_empty() {
        let names: Vec<String> = p
            .waiting
            .iter()
            .take(10)
            .map(|a| prefix(a).trim_end().to_string())
            .collect();
        line.push_str(&format!(" · waiting for {}", names.join(", ")));
        if p.waiting.len() > 10 {
            line.push_str(&format!(" and {} more", p.waiting.len() - 10));
        }
    }
    if p.approvals > 0 {
        let s = if p.approvals == 1 { "" } else { "s" };
        line.push_str(&format!(
            " · :white_check_mark: {} approval{s}",
            p.approvals
        ));
    }
    if p.changes_requested > 0 {
        line.push_str(&format!(
            " · :warning: {} change request{}",
            p.changes_requested,
            if p.changes_requested == 1 { "" } else { "s" }
        ));
    }
    fit(&line, MAX_SECTION)
}

/// `40m`, `5h`, `3d`: a reminder's sense of age, not a timestamp.
pub fn age_words(secs: u64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Most messages a quiet-hours summary holds: each is one section, within
/// [`MAX_BLOCKS`] with the header and footer.
pub const SUMMARY_MAX_ITEMS: usize = 45;

/// DMs held during someone's quiet hours, delivered as one message when they
/// end: a header, each held message's text as a section (in the order they
/// were queued), and a footer.
pub fn held_summary(items: &[Message]) -> Message {
    let header = format!(
        "While you were in quiet hours ({} message{})",
        items.len(),
        if items.len() == 1 { "" } else { "s" }
    );
    let mut blocks = vec![serde_json::json!(
        { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } }
    )];
    let mut text = format!("*{header}*");
    for m in items {
        let body = fit(&m.text, MAX_SECTION);
        text.push_str("\n\n");
        text.push_str(&body);
        blocks.push(serde_json::json!(
            { "type": "section", "text": { "type": "mrkdwn", "text": body } }
        ));
    }
    blocks.push(serde_json::json!(
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": "Held by your quiet hours (`/prpr quiet off` to stop)." } ] }
    ));
    Message {
        text: fit(&text, MAX_TEXT),
        blocks: serde_json::Value::Array(blocks),
    }
}

/// `service` in cluster `cluster`, as code spans.
fn ecs_service(s: &crate::notice::EcsService) -> String {
    format!("`{}` in cluster `{}`", code(&s.service), code(&s.cluster))
}

/// Text for inside a code span: escaped, and without backticks, which would
/// end the span.
fn code(text: &str) -> String {
    escape(&text.replace('`', "'"))
}

fn minutes(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// What starts a message in a shared channel so the right person is pinged.
fn prefix(address: &Address) -> String {
    match address {
        Address::Nobody => String::new(),
        Address::User { id } => format!("<@{}> ", strip_markup(id)),
        Address::Group { id } => format!("<!subteam^{}> ", strip_markup(id)),
        Address::Name { name } => format!("@{} ", escape(name)),
    }
}

/// `<url|owner/repo#12>`.
fn pr_link(pr: &Pr) -> String {
    link(&pr.link, &format!("{}#{}", pr.repo, pr.number))
}

/// `*Title* · by @author · +10 −2` (the size only when known).
fn pr_summary(pr: &Pr) -> String {
    let mut s = format!(
        "*{}* · by @{}",
        escape(&clip(&pr.title, MAX_TITLE)),
        escape(&clip(&pr.author, MAX_NAME))
    );
    if let Some((added, deleted)) = pr.size {
        s.push_str(&format!(" · +{added} −{deleted}"));
    }
    s
}

/// `org/slug` as shown in messages.
fn team_label(org: &str, slug: &str) -> String {
    format!("*{}/{}*", escape(org), escape(slug))
}

fn with_quote(mut text: String, excerpt: Option<&str>) -> String {
    if let Some(e) = excerpt {
        text.push('\n');
        text.push_str(&quote(e));
    }
    text
}

/// Escapes the three characters Slack gives meaning to in mrkdwn.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// IDs come from the config, which validates them; a hostile one still must
/// not close the mention and open another.
fn strip_markup(id: &str) -> String {
    id.chars()
        .filter(|c| !matches!(c, '<' | '>' | '|' | '&'))
        .collect()
}

/// `<url|label>`: a link with an escaped label. GitHub URLs never contain `<`,
/// `>` or `|`, but a hostile one must not break out of the link either.
pub fn link(url: &str, label: &str) -> String {
    let url: String = url
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '|'))
        .collect();
    format!("<{url}|{}>", escape(label))
}

/// Plain text as a mrkdwn quote: each line escaped and prefixed with `> `.
pub fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("> {}", escape(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::{Notice, Pr};

    fn pr(link: &str) -> Pr {
        Pr {
            repo: "acme/app".into(),
            number: 42,
            title: "Add <caching> & stuff".into(),
            author: "carol".into(),
            link: link.into(),
            size: Some((120, 7)),
        }
    }

    const PR_URL: &str = "https://github.com/acme/app/pull/42";

    /// One line per rendered case: what users read, pinned. A change here is
    /// a change every user sees.
    #[test]
    fn every_notice_kind_renders_as_pinned() {
        let review_url = "https://github.com/acme/app/pull/42#pullrequestreview-1";
        let comment_url = "https://github.com/acme/app/pull/42#issuecomment-7";
        let team = Whom::Team {
            org: "acme".into(),
            slug: "backend".into(),
        };
        let cases: Vec<(Address, Notice)> = vec![
            (
                Address::Nobody,
                Notice::ReviewRequested {
                    pr: pr(PR_URL),
                    by: "carol".into(),
                    whom: Whom::You,
                    again: false,
                },
            ),
            (
                Address::User {
                    id: "U0BOB0001".into(),
                },
                Notice::ReviewRequested {
                    pr: pr(PR_URL),
                    by: "carol".into(),
                    whom: Whom::You,
                    again: true,
                },
            ),
            (
                Address::Group {
                    id: "S0BACKEND1".into(),
                },
                Notice::ReviewRequested {
                    pr: pr(PR_URL),
                    by: "carol".into(),
                    whom: team.clone(),
                    again: false,
                },
            ),
            (
                Address::Name {
                    name: "dave<x>".into(),
                },
                Notice::ReviewSubmitted {
                    pr: pr(review_url),
                    reviewer: "alice".into(),
                    verdict: Verdict::ChangesRequested,
                    excerpt: Some("Please rename <Foo>\nand add a test…".into()),
                },
            ),
            (
                Address::Nobody,
                Notice::ReviewSubmitted {
                    pr: Pr {
                        size: None,
                        ..pr(review_url)
                    },
                    reviewer: "alice".into(),
                    verdict: Verdict::Approved,
                    excerpt: None,
                },
            ),
            (
                Address::Nobody,
                Notice::Mentioned {
                    pr: pr(comment_url),
                    by: "bob".into(),
                    whom: Whom::You,
                    excerpt: Some("cc @alice <!here>".into()),
                },
            ),
            (
                Address::Group {
                    id: "S0BACKEND1".into(),
                },
                Notice::Mentioned {
                    pr: pr(comment_url),
                    by: "bob".into(),
                    whom: team,
                    excerpt: None,
                },
            ),
            (
                Address::Nobody,
                Notice::Merged {
                    pr: pr(PR_URL),
                    by: "alice".into(),
                },
            ),
        ];
        let rendered: Vec<String> = cases.iter().map(|(a, n)| render(a, n).text).collect();
        let expected = [
            ":eyes: @carol requested your review on <https://github.com/acme/app/pull/42|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7",
            "<@U0BOB0001> :repeat: @carol re-requested your review on <https://github.com/acme/app/pull/42|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7",
            "<!subteam^S0BACKEND1> :eyes: @carol requested a review from team *acme/backend* on <https://github.com/acme/app/pull/42|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7",
            "@dave&lt;x&gt; :warning: @alice requested changes on <https://github.com/acme/app/pull/42#pullrequestreview-1|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff*\n> Please rename &lt;Foo&gt;\n> and add a test…",
            ":white_check_mark: @alice approved <https://github.com/acme/app/pull/42#pullrequestreview-1|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff*",
            ":wave: @bob mentioned you on <https://github.com/acme/app/pull/42#issuecomment-7|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff*\n> cc @alice &lt;!here&gt;",
            "<!subteam^S0BACKEND1> :wave: @bob mentioned team *acme/backend* on <https://github.com/acme/app/pull/42#issuecomment-7|acme/app#42>\n*Add &lt;caching&gt; &amp; stuff*",
            ":tada: <https://github.com/acme/app/pull/42|acme/app#42> merged by @alice\n*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7",
        ];
        for (got, want) in rendered.iter().zip(expected) {
            assert_eq!(got, want);
        }
        assert_eq!(rendered.len(), expected.len());
    }

    fn a_card() -> Card {
        use crate::notice::Reviewer;
        let r = |name: &str, team: bool, state| Reviewer {
            name: name.into(),
            team,
            state,
        };
        Card {
            pr: pr(PR_URL),
            status: PrStatus::Open,
            reviewers: vec![
                r("alice", false, ReviewState::Approved),
                r("bob", false, ReviewState::ChangesRequested),
                r("dave", false, ReviewState::Commented),
                r("eve", false, ReviewState::Pending),
                r("acme/backend", true, ReviewState::Pending),
            ],
            labels: vec!["backend".into()],
            base: Some("main".into()),
            created_at: None,
            updated_at: None,
        }
    }

    /// The root card as people see it at the top of a PR's thread, pinned.
    #[test]
    fn the_card_shows_status_size_base_and_each_reviewer() {
        let m = card(&a_card());
        assert_eq!(
            m.text,
            "*acme/app#42 Add &lt;caching&gt; &amp; stuff*\n\
             <https://github.com/acme/app/pull/42|acme/app#42> · :large_green_circle: *Open* · by @carol · +120 −7 · into `main`\n\
             *Reviewers:* :white_check_mark: @alice (approved) · :repeat: @bob (changes requested) · \
             :speech_balloon: @dave (commented) · :hourglass_flowing_sand: @eve (pending) · \
             :hourglass_flowing_sand: team *acme/backend* (pending)"
        );
        // The header is plain text: Slack shows it as written, never as markup.
        assert_eq!(m.blocks[0]["type"], "header");
        assert_eq!(m.blocks[0]["text"]["type"], "plain_text");
        assert_eq!(
            m.blocks[0]["text"]["text"],
            "acme/app#42 Add <caching> & stuff"
        );
        let mut merged = a_card();
        merged.status = PrStatus::Merged;
        assert!(
            card(&merged)
                .text
                .contains(":large_purple_circle: *Merged*")
        );
    }

    /// Slack refuses a section over 3,000 characters, a header over 150 and
    /// a `text` over 40,000: a huge title or a long list of reviewers still
    /// makes a message Slack takes, with the PR link intact.
    #[test]
    fn huge_user_strings_fit_slacks_limits_and_keep_the_link() {
        let mut c = a_card();
        c.pr.title = "<&>".repeat(400_000);
        for i in 0..500 {
            c.reviewers.push(crate::notice::Reviewer {
                name: format!("reviewer-{i}-{}", "x".repeat(200)),
                team: false,
                state: ReviewState::Pending,
            });
        }
        let m = card(&c);
        let header = m.blocks[0]["text"]["text"].as_str().unwrap();
        let section = m.blocks[1]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER && header.ends_with('…'));
        assert!(
            section.chars().count() <= MAX_SECTION && section.ends_with('…'),
            "{}",
            section.chars().count()
        );
        assert!(m.text.chars().count() <= MAX_TEXT);
        assert!(section.contains("<https://github.com/acme/app/pull/42|acme/app#42>"));

        let mut long = pr(PR_URL);
        long.title = "A".repeat(1_048_576);
        for notice in [
            Notice::Merged {
                pr: long.clone(),
                by: "b".repeat(10_000),
            },
            Notice::ReviewSubmitted {
                pr: long.clone(),
                reviewer: "r".into(),
                verdict: Verdict::Approved,
                excerpt: Some("q".repeat(100_000)),
            },
            Notice::Mentioned {
                pr: long.clone(),
                by: "m".into(),
                whom: Whom::You,
                excerpt: Some("<!channel> ".repeat(10_000)),
            },
        ] {
            let m = render(&Address::Nobody, &notice);
            assert!(
                m.text.chars().count() <= MAX_SECTION,
                "{}",
                m.text.chars().count()
            );
            assert!(
                m.text
                    .contains("<https://github.com/acme/app/pull/42|acme/app#42>")
            );
            assert!(!m.text.contains("<!channel>"));
        }
    }

    #[test]
    fn fit_never_cuts_inside_a_link_or_an_escape() {
        assert_eq!(fit("abc <https://x|y> d", 8), "abc …");
        assert_eq!(fit("ab &amp; cd", 6), "ab …");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn a_dm_links_to_the_channel_thread() {
        let n = Notice::Merged {
            pr: pr(PR_URL),
            by: "alice".into(),
        };
        let m = render_in(
            &Address::Nobody,
            &n,
            Some("https://acme.slack.com/archives/C1/p1700000000000100"),
        );
        assert!(
            m.text
                .ends_with("\n<https://acme.slack.com/archives/C1/p1700000000000100|Discussion in the channel thread>"),
            "{}",
            m.text
        );
    }

    #[test]
    fn blocks_carry_the_same_text_as_the_fallback() {
        let m = render(
            &Address::Nobody,
            &Notice::Merged {
                pr: pr(PR_URL),
                by: "alice".into(),
            },
        );
        assert_eq!(
            m.blocks,
            serde_json::json!([{"type": "section", "text": {"type": "mrkdwn", "text": m.text}}])
        );
    }

    #[test]
    fn stored_payloads_of_both_generations_render() {
        let notice = Notice::Merged {
            pr: pr(PR_URL),
            by: "alice".into(),
        };
        let json = serde_json::json!({"address": {"type": "nobody"}, "notice": notice}).to_string();
        let stored = Stored::parse(&json).expect("a notice");
        assert_eq!(stored.render(), render(&Address::Nobody, &notice));
        let legacy = r#"{"text":"hi","blocks":[]}"#;
        assert_eq!(
            Stored::parse(legacy)
                .expect("a rendered message")
                .render()
                .text,
            "hi"
        );
        assert!(Stored::parse(r#"{"x":1}"#).is_err());
    }

    #[test]
    fn escapes_the_three_control_characters_only() {
        assert_eq!(
            escape("a & b <!channel> *x*"),
            "a &amp; b &lt;!channel&gt; *x*"
        );
        assert_eq!(escape("日本 @here"), "日本 @here");
    }

    #[test]
    fn link_escapes_label_and_defuses_url() {
        assert_eq!(
            link("https://x/1", "Fix <b> & c"),
            "<https://x/1|Fix &lt;b&gt; &amp; c>"
        );
        assert_eq!(link("https://x/<|1>", "t"), "<https://x/1|t>");
    }

    #[test]
    fn hostile_ids_cannot_open_another_mention() {
        let m = render(
            &Address::User {
                id: "U1> <!channel".into(),
            },
            &Notice::Merged {
                pr: pr(PR_URL),
                by: "a".into(),
            },
        );
        assert!(m.text.starts_with("<@U1 !channel> "), "{}", m.text);
    }

    /// A reminder page as people see it, pinned: header, repository,
    /// one line per PR (escaped title, age, who it waits for, approvals),
    /// footer with the page.
    #[test]
    fn a_digest_page_renders_as_pinned() {
        use crate::notice::{DigestPr, DigestRepo};
        let d = Digest {
            title: "Pull requests waiting for review · backend".into(),
            page: 2,
            pages: 3,
            total: 101,
            repos: vec![DigestRepo {
                repo: "acme/app".into(),
                continued: true,
                prs: vec![DigestPr {
                    pr: Pr {
                        title: "Fix <!channel> & co".into(),
                        ..pr(PR_URL)
                    },
                    draft: true,
                    age_secs: Some(3 * 86_400 + 5),
                    waiting: vec![
                        Address::User {
                            id: "U0ALICE01".into(),
                        },
                        Address::Group {
                            id: "S0BACKEND1".into(),
                        },
                        Address::Name { name: "zed".into() },
                    ],
                    approvals: 1,
                    changes_requested: 2,
                }],
            }],
        };
        let m = digest(&d);
        assert_eq!(
            m.text,
            "*Pull requests waiting for review · backend*\n*acme/app* (continued)\n<https://github.com/acme/app/pull/42|#42> *Fix &lt;!channel&gt; &amp; co* · by @carol · draft · 3d old · waiting for <@U0ALICE01>, <!subteam^S0BACKEND1>, @zed · :white_check_mark: 1 approval · :warning: 2 change requests\n101 pull requests · message 2 of 3"
        );
        let blocks = m.blocks.as_array().unwrap();
        assert_eq!(
            blocks.len(),
            DIGEST_FIXED_BLOCKS + DIGEST_REPO_BLOCKS + DIGEST_PR_BLOCKS
        );
        assert_eq!(
            blocks[0]["text"]["text"],
            "Pull requests waiting for review · backend (2/3)"
        );
        assert_eq!(render(&Address::Nobody, &Notice::Digest(d.clone())), m);
    }
}
