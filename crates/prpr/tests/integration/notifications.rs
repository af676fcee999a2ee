//! End to end, with GitHub's real payload shapes: a delivery in, the exact
//! Slack message out (or none), through the real server, store and sender.
//!
//! The fixtures come from `@octokit/webhooks-examples` (see
//! fixtures/github/README.md). Where the package has no example of a case
//! (team requests, approvals, merged PRs, comments on PRs), the test derives it
//! from the nearest real payload and says which field it changed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use crate::support;

use std::time::Duration;

use crate::support::{Launch, Server, fixture};
use serde_json::{Value, json};
use testkit::slack::{Posted, SlackConfig, SlackDouble};

const PR_LINK: &str = "<https://github.com/Codertocat/Hello-World/pull/2|Codertocat/Hello-World#2>";
const PR_LINE: &str = "*Update the README with new information.* · by @Codertocat · +1 −1";

async fn setup(config: &str) -> (Server, SlackDouble) {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let server = Server::start(Some(&slack), Launch::with_config(config.to_string())).await;
    (server, slack)
}

/// Exactly `n` messages in all. The deliveries were answered (so their
/// notifications are queued); once the outbox has drained nothing more can
/// arrive, so Slack's record is final.
async fn expect_posts(s: &Server, slack: &SlackDouble, n: usize) -> Vec<Posted> {
    let outbox = s.drained(Duration::from_secs(10)).await;
    assert_eq!(outbox.dead, 0, "{outbox:?}");
    let all = slack.posted();
    assert_eq!(all.len(), n, "posted: {all:#?}");
    all
}

fn text(p: &Posted) -> &str {
    p.text.as_deref().unwrap_or("")
}

/// The messages posted in `channel`'s thread of one PR: its root card and
/// the replies under it, in order. Fails when the channel has anything else.
fn thread_in<'a>(posted: &'a [Posted], channel: &str) -> (&'a Posted, Vec<&'a Posted>) {
    let here: Vec<&Posted> = posted.iter().filter(|p| p.channel == channel).collect();
    let (roots, replies): (Vec<&Posted>, Vec<&Posted>) =
        here.into_iter().partition(|p| p.thread_ts.is_none());
    assert_eq!(roots.len(), 1, "one root in {channel}: {posted:#?}");
    assert!(
        replies
            .iter()
            .all(|r| r.thread_ts.as_deref() == Some(roots[0].ts.as_str())),
        "every reply in the root's thread: {posted:#?}"
    );
    (roots[0], replies)
}

#[tokio::test]
async fn review_request_reaches_the_reviewer_as_a_dm_once_with_block_kit() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    let payload = fixture("pull_request.review_requested.user");
    assert_eq!(s.deliver("pull_request", "rr-1", &payload).await.0, 202);
    let posted = expect_posts(&s, &slack, 1).await;
    let p = &posted[0];
    assert_eq!(p.channel, "U0OCTOCAT1");
    let expected = format!(":eyes: @Codertocat requested your review on {PR_LINK}\n{PR_LINE}");
    assert_eq!(text(p), expected);
    assert_eq!(
        p.blocks,
        Some(json!([{"type": "section", "text": {"type": "mrkdwn", "text": expected}}]))
    );
    assert_eq!(p.unfurl_links, Some(false));

    // The same request arriving again under a new delivery ID is not announced twice.
    assert_eq!(s.deliver("pull_request", "rr-2", &payload).await.0, 202);
    expect_posts(&s, &slack, 1).await;
}

#[tokio::test]
async fn re_request_after_a_review_says_re_requested() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    // octocat reviews (the fixture's review, by octocat instead of the author).
    let mut review = fixture("pull_request_review.submitted");
    review["review"]["user"]["login"] = json!("octocat");
    review["sender"]["login"] = json!("octocat");
    assert_eq!(
        s.deliver("pull_request_review", "rv-1", &review).await.0,
        202
    );
    assert_eq!(
        s.deliver(
            "pull_request",
            "rr-1",
            &fixture("pull_request.review_requested.user")
        )
        .await
        .0,
        202
    );
    // One message each to the author and the reviewer (different channels,
    // so no order between them is promised).
    let posted = expect_posts(&s, &slack, 2).await;
    let to = |channel: &str| {
        posted
            .iter()
            .find(|p| p.channel == channel)
            .unwrap_or_else(|| panic!("nothing to {channel}: {posted:#?}"))
    };
    assert!(text(to("U0CODERTO1")).contains("@octocat"));
    assert_eq!(
        text(to("U0OCTOCAT1")),
        format!(":repeat: @Codertocat re-requested your review on {PR_LINK}\n{PR_LINE}")
    );
}

#[tokio::test]
async fn channel_delivery_mentions_the_reviewer_in_the_channel() {
    let config = support::BASE_CONFIG.replace("[notify]\n", "[notify]\ndelivery = \"both\"\n");
    let (s, slack) = setup(&config).await;
    s.deliver(
        "pull_request",
        "rr-1",
        &fixture("pull_request.review_requested.user"),
    )
    .await;
    // The channel gets the PR's card and the request in its thread; the
    // reviewer a DM.
    let posted = expect_posts(&s, &slack, 3).await;
    let (root, replies) = thread_in(&posted, "C0GENERAL1");
    assert!(
        text(root).starts_with("*Codertocat/Hello-World#2 Update the README"),
        "{}",
        text(root)
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(
        text(replies[0]),
        format!("<@U0OCTOCAT1> :eyes: @Codertocat requested your review on {PR_LINK}\n{PR_LINE}")
    );
    assert_eq!(
        posted.iter().filter(|p| p.channel == "U0OCTOCAT1").count(),
        1
    );
}

#[tokio::test]
async fn team_request_mentions_the_user_group() {
    let config = format!(
        "{}\n[teams]\n\"Codertocat/justice-league\" = {{ usergroup = \"S0JUSTICE1\", channel = \"C0JUSTICE1\" }}\n",
        support::BASE_CONFIG
    );
    let (s, slack) = setup(&config).await;
    // No example in the package has requested_team: take the user request and
    // swap requested_reviewer for GitHub's team object.
    let mut payload = fixture("pull_request.review_requested.user");
    payload
        .as_object_mut()
        .unwrap()
        .remove("requested_reviewer");
    payload["requested_team"] = json!({"name": "Justice League", "id": 1, "node_id": "MDQ6VGVhbTE=", "slug": "justice-league", "privacy": "closed", "permission": "admin"});
    assert_eq!(s.deliver("pull_request", "team-1", &payload).await.0, 202);
    let posted = expect_posts(&s, &slack, 2).await;
    let (_, replies) = thread_in(&posted, "C0JUSTICE1");
    assert_eq!(
        text(replies[0]),
        format!(
            "<!subteam^S0JUSTICE1> :eyes: @Codertocat requested a review from team *Codertocat/justice-league* on {PR_LINK}\n{PR_LINE}"
        )
    );
}

#[tokio::test]
async fn drafts_stay_quiet_until_ready_for_review() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    let mut draft_request = fixture("pull_request.review_requested.user");
    draft_request["pull_request"]["draft"] = json!(true);
    assert_eq!(
        s.deliver("pull_request", "d-1", &draft_request).await,
        (202, json!({"status": "ignored", "notifications": 0}))
    );
    expect_posts(&s, &slack, 0).await;
    let skipped = &s.logged("delivery", 1, Duration::from_secs(5)).await[0]["skipped"];
    assert_eq!(skipped, "pull request is a draft");

    let mut ready = fixture("pull_request.ready_for_review");
    ready["pull_request"]["requested_reviewers"] =
        draft_request["pull_request"]["requested_reviewers"].clone();
    assert_eq!(
        ready["pull_request"]["requested_reviewers"][0]["login"], "octocat",
        "fixture has octocat requested"
    );
    assert_eq!(s.deliver("pull_request", "d-2", &ready).await.0, 202);
    let posted = expect_posts(&s, &slack, 1).await;
    assert_eq!(posted[0].channel, "U0OCTOCAT1");
    assert_eq!(
        text(&posted[0]),
        format!(":eyes: @Codertocat requested your review on {PR_LINK}\n{PR_LINE}")
    );
}

#[tokio::test]
async fn self_requests_and_bots_are_skipped() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    let mut own = fixture("pull_request.review_requested.user");
    own["requested_reviewer"]["login"] = json!("Codertocat");
    s.deliver("pull_request", "self-1", &own).await;
    let mut bot = fixture("pull_request.review_requested.user");
    bot["sender"] = json!({"login": "dependabot[bot]", "type": "Bot"});
    s.deliver("pull_request", "bot-1", &bot).await;
    expect_posts(&s, &slack, 0).await;
    let reasons: Vec<Value> = s
        .logged("delivery", 2, Duration::from_secs(5))
        .await
        .iter()
        .map(|l| l["skipped"].clone())
        .collect();
    assert_eq!(
        reasons,
        vec![
            json!("Codertocat requested their own review"),
            json!("sender dependabot[bot] is a bot")
        ]
    );
}

#[tokio::test]
async fn review_results_reach_the_author() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    // The package's submitted review is a "commented" one by the author; make octocat the reviewer.
    let mut review = fixture("pull_request_review.submitted");
    review["review"]["user"]["login"] = json!("octocat");
    review["sender"]["login"] = json!("octocat");
    review["review"]["body"] = json!("Looks great <3\nOne nit & one question\n\nthird\nfourth");
    let url = review["review"]["html_url"].as_str().unwrap().to_string();
    for (i, state) in ["approved", "changes_requested", "commented"]
        .iter()
        .enumerate()
    {
        review["review"]["state"] = json!(state);
        assert_eq!(
            s.deliver("pull_request_review", &format!("rv-{i}"), &review)
                .await
                .0,
            202
        );
    }
    let posted = expect_posts(&s, &slack, 3).await;
    let link = format!("<{url}|Codertocat/Hello-World#2>");
    let tail = "*Update the README with new information.*\n> Looks great &lt;3\n> One nit &amp; one question\n> third…";
    let texts: Vec<&str> = posted.iter().map(text).collect();
    assert_eq!(
        texts,
        vec![
            format!(":white_check_mark: @octocat approved {link}\n{tail}"),
            format!(":warning: @octocat requested changes on {link}\n{tail}"),
            format!(":speech_balloon: @octocat commented on {link}\n{tail}"),
        ]
    );
    assert!(posted.iter().all(|p| p.channel == "U0CODERTO1"));

    // The fixture as published: the author comments on their own PR → nothing.
    s.deliver(
        "pull_request_review",
        "own",
        &fixture("pull_request_review.submitted"),
    )
    .await;
    expect_posts(&s, &slack, 3).await;
}

#[tokio::test]
async fn mentions_in_comments_reach_mapped_members() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    // No example in the package is a comment on a PR: the issue comment fixture
    // plus the `pull_request` links GitHub adds when the issue is a PR.
    let mut c = fixture("issue_comment.created.issue");
    c["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1", "html_url": "https://github.com/Codertocat/Hello-World/pull/1"});
    c["comment"]["body"] = json!(
        "@octocat please check; mail octocat@github.com\n`@hubot` is code\n> @hubot quoted\n@nobody-mapped"
    );
    assert_eq!(
        s.deliver("issue_comment", "c-1", &c).await,
        (202, json!({"status": "queued", "notifications": 1}))
    );
    let posted = expect_posts(&s, &slack, 1).await;
    assert_eq!(posted[0].channel, "U0OCTOCAT1");
    let url = c["comment"]["html_url"].as_str().unwrap();
    let title = c["issue"]["title"].as_str().unwrap();
    assert_eq!(
        text(&posted[0]),
        format!(
            ":wave: @Codertocat mentioned you on <{url}|Codertocat/Hello-World#1>\n*{title}*\n> @octocat please check; mail octocat@github.com\n> `@hubot` is code\n> &gt; @hubot quoted…"
        )
    );

    // A plain issue's comments are not PR mentions.
    let mut plain = fixture("issue_comment.created.issue");
    plain["comment"]["body"] = json!("@octocat");
    assert_eq!(
        s.deliver("issue_comment", "c-2", &plain).await,
        (202, json!({"status": "ignored", "notifications": 0}))
    );

    // Review comments (inline on the diff) too.
    let mut rc = fixture("pull_request_review_comment.created");
    rc["comment"]["body"] = json!("What does @hubot think?");
    assert_eq!(
        s.deliver("pull_request_review_comment", "c-3", &rc).await.0,
        202
    );
    let posted = expect_posts(&s, &slack, 2).await;
    assert_eq!(posted[1].channel, "U0HUBOT001");
    assert!(text(&posted[1]).starts_with(&format!(
        ":wave: @Codertocat mentioned you on <{}|Codertocat/Hello-World#2>",
        rc["comment"]["html_url"].as_str().unwrap()
    )));
}

#[tokio::test]
async fn merged_notice_goes_to_the_merged_channel() {
    let config =
        support::BASE_CONFIG.replace("[notify]\n", "[notify]\nmerged_channel = \"C0MERGED01\"\n");
    let (s, slack) = setup(&config).await;
    assert_eq!(
        s.deliver(
            "pull_request",
            "m-0",
            &fixture("pull_request.closed.unmerged")
        )
        .await
        .1["status"],
        "ignored"
    );
    // No merged example in the package: the closed one with merged=true and merged_by set.
    let mut merged = fixture("pull_request.closed.unmerged");
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_by"] = json!({"login": "octocat", "type": "User"});
    assert_eq!(s.deliver("pull_request", "m-1", &merged).await.0, 202);
    let posted = expect_posts(&s, &slack, 2).await;
    let (root, replies) = thread_in(&posted, "C0MERGED01");
    assert!(
        text(root).contains(":large_purple_circle: *Merged*"),
        "{}",
        text(root)
    );
    assert_eq!(
        text(replies[0]),
        format!(":tada: {PR_LINK} merged by @octocat\n{PR_LINE}")
    );
}

#[tokio::test]
async fn user_text_is_escaped_for_slack() {
    let (s, slack) = setup(support::BASE_CONFIG).await;
    let mut payload = fixture("pull_request.review_requested.user");
    payload["pull_request"]["title"] = json!("<!channel> & <@U0EVIL> *bold*");
    s.deliver("pull_request", "esc-1", &payload).await;
    let posted = expect_posts(&s, &slack, 1).await;
    assert!(
        text(&posted[0])
            .contains("*&lt;!channel&gt; &amp; &lt;@U0EVIL&gt; *bold** · by @Codertocat"),
        "{}",
        text(&posted[0])
    );
}

#[tokio::test]
async fn members_md_in_prpr_format_with_a_bad_line() {
    let slack = SlackDouble::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let members = dir.path().join("MEMBERS.md");
    std::fs::write(
        &members,
        "# Team\n\n * @octocat: U0FROMMD01\n * @broken line\n",
    )
    .unwrap();
    let s = Server::start(
        Some(&slack),
        Launch {
            config: "[notify]\nchannel = \"C0GENERAL1\"\n".into(),
            env: vec![(
                "MENTION_COMMENT_MEMBERS".into(),
                members.display().to_string(),
            )],
            ..Launch::default()
        },
    )
    .await;
    // The bad line is reported with its number, and the good one still works.
    assert!(
        s.log().iter().any(|l| l.contains("MEMBERS.md")
            && l.contains("\"line\":4")
            && l.contains("line skipped")),
        "{:#?}",
        s.log()
    );
    s.deliver(
        "pull_request",
        "md-1",
        &fixture("pull_request.review_requested.user"),
    )
    .await;
    let posted = expect_posts(&s, &slack, 1).await;
    assert_eq!(posted[0].channel, "U0FROMMD01");
}

#[tokio::test]
async fn slack_names_from_a_prpr_members_md_are_resolved_to_ids() {
    use testkit::slack::SlackUser;
    let slack = SlackDouble::start(SlackConfig {
        users: vec![
            SlackUser {
                id: "U0OCTOSLK1".into(),
                name: "octo_slack".into(),
                display_name: "Octo".into(),
                deleted: false,
            },
            SlackUser {
                id: "U0OLDOLD01".into(),
                name: "gone".into(),
                display_name: String::new(),
                deleted: true,
            },
        ],
        ..SlackConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let members = dir.path().join("MEMBERS.md");
    // The Ruby prpr's format: GitHub login → Slack name.
    std::fs::write(
        &members,
        " * @octocat: @octo_slack\n * @Codertocat: @gone\n",
    )
    .unwrap();
    let s = Server::start(
        Some(&slack),
        Launch {
            config: "[notify]\nchannel = \"C0GENERAL1\"\n".into(),
            env: vec![("PRPR_MEMBERS_FILE".into(), members.display().to_string())],
            ..Launch::default()
        },
    )
    .await;
    let warn = s.log_events("Slack names not found in the workspace: shown as plain text, no DMs");
    assert_eq!(warn.len(), 1, "{:#?}", s.log());
    assert_eq!(warn[0]["unresolved"], "gone");
    s.deliver(
        "pull_request",
        "names-1",
        &fixture("pull_request.review_requested.user"),
    )
    .await;
    let posted = expect_posts(&s, &slack, 1).await;
    assert_eq!(
        posted[0].channel, "U0OCTOSLK1",
        "a real DM, not a plain-text @name"
    );
}

#[tokio::test]
async fn a_mention_storm_tells_at_most_max_mentions_per_comment_people_quickly() {
    let (s, slack) = setup(&support::members(200, "max_mentions_per_comment = 5")).await;
    let mut c = fixture("issue_comment.created.issue");
    c["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1", "html_url": "https://github.com/Codertocat/Hello-World/pull/1"});
    // 200 mapped members and 100,000 unmapped logins in one comment.
    let mut body: String = (0..200).map(|i| format!("@r{i} ")).collect();
    body.extend((0..100_000).map(|i| format!("@stranger{i} ")));
    c["comment"]["body"] = json!(body);
    let started = std::time::Instant::now();
    let (status, reply) = s.deliver("issue_comment", "storm-1", &c).await;
    let took = started.elapsed();
    assert_eq!(
        (status, reply),
        (202, json!({"status": "queued", "notifications": 5}))
    );
    // Far inside GitHub's 10 s (it was 14 s with a quadratic scan).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let line = s
        .logged("mention storm: only the first notify.max_mentions_per_comment people mentioned in the comment are told", 1, Duration::from_secs(5))
        .await;
    assert_eq!(
        (line[0]["told"].as_u64(), line[0]["left_out"].as_u64()),
        (Some(5), Some(195))
    );
    let posted = expect_posts(&s, &slack, 5).await;
    let mut channels: Vec<&str> = posted.iter().map(|p| p.channel.as_str()).collect();
    channels.sort();
    assert_eq!(
        channels,
        ["U0R00000", "U0R00001", "U0R00002", "U0R00003", "U0R00004"]
    );
}
