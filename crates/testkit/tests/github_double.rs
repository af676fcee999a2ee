//! The GitHub double answers as the real REST API does.

// A test crate: a panic is a test failure with a backtrace (as clippy.toml
// allows inside #[test] fns; this extends it to the helpers here).
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::github::{GitHubDouble, GitHubFault};

const TOKEN: &str = "ghs_test";

async fn get(
    d: &GitHubDouble,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", d.api_url()))
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "testkit");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

#[tokio::test]
async fn auth_repo_and_contents() {
    let d = GitHubDouble::start(TOKEN).await;
    let config = "channel = \"C123\"\n".repeat(10);
    d.put_file("Acme/Widgets", ".github/prpr.toml", &config);

    // Wrong token: 401 whatever the path.
    let (s, _, v) = get(&d, "/repos/acme/widgets", Some("Bearer nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["message"], "Bad credentials");
    assert_eq!(v["documentation_url"], "https://docs.github.com/rest");

    // No token: a private repository is invisible.
    let (s, _, v) = get(&d, "/repos/acme/widgets", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "Not Found");

    // Both auth schemes; names are case-insensitive.
    for auth in [format!("Bearer {TOKEN}"), format!("token {TOKEN}")] {
        let (s, h, v) = get(&d, "/repos/acme/widgets", Some(&auth)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["full_name"], "Acme/Widgets");
        assert_eq!(v["default_branch"], "main");
        assert_eq!(h["x-ratelimit-limit"], "5000");
        assert!(h.contains_key("x-ratelimit-remaining"));
    }

    let auth = format!("Bearer {TOKEN}");
    let (s, _, v) = get(&d, "/repos/acme/nope", Some(&auth)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "Not Found");

    let (s, _, v) = get(
        &d,
        "/repos/Acme/Widgets/contents/.github/prpr.toml?ref=main",
        Some(&auth),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["type"], "file");
    assert_eq!(v["encoding"], "base64");
    assert_eq!(v["name"], "prpr.toml");
    assert_eq!(v["path"], ".github/prpr.toml");
    assert_eq!(v["size"], config.len());
    assert_eq!(v["sha"].as_str().unwrap().len(), 40);
    let content = v["content"].as_str().unwrap();
    let lines: Vec<&str> = content.split_terminator('\n').collect();
    assert!(lines.len() > 1);
    assert!(
        lines[..lines.len() - 1].iter().all(|l| l.len() == 60),
        "{content}"
    );
    assert!(content.ends_with('\n'));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(content.replace('\n', ""))
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), config);

    // Without ref: the default branch.
    let (s, _, _) = get(
        &d,
        "/repos/acme/widgets/contents/.github/prpr.toml",
        Some(&auth),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Missing file, missing ref.
    let (s, _, v) = get(&d, "/repos/acme/widgets/contents/nope.toml", Some(&auth)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "Not Found");
    let (s, _, v) = get(
        &d,
        "/repos/acme/widgets/contents/.github/prpr.toml?ref=dev",
        Some(&auth),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "No commit found for the ref dev");
    // A directory lists its entries.
    let (s, _, v) = get(&d, "/repos/acme/widgets/contents/.github", Some(&auth)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["type"], "file");
    assert_eq!(v[0]["path"], ".github/prpr.toml");

    let reqs = d.requests();
    assert_eq!(reqs[0], ("GET".into(), "/repos/acme/widgets".into(), 401));
    assert_eq!(reqs[1].2, 404);
    assert!(
        reqs.iter().any(
            |r| r.1 == "/repos/Acme/Widgets/contents/.github/prpr.toml?ref=main" && r.2 == 200
        )
    );
}

#[tokio::test]
async fn default_branch() {
    let d = GitHubDouble::start(TOKEN).await;
    let auth = format!("Bearer {TOKEN}");
    d.set_default_branch("o/r", "trunk");
    d.put_file("o/r", "a.txt", "on trunk");
    let (_, _, v) = get(&d, "/repos/o/r", Some(&auth)).await;
    assert_eq!(v["default_branch"], "trunk");
    let (s, _, _) = get(&d, "/repos/o/r/contents/a.txt", Some(&auth)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&d, "/repos/o/r/contents/a.txt?ref=trunk", Some(&auth)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get(&d, "/repos/o/r/contents/a.txt?ref=main", Some(&auth)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn faults() {
    let d = GitHubDouble::start(TOKEN).await;
    d.put_file("o/r", "a.txt", "x");
    let auth = format!("Bearer {TOKEN}");

    d.set_fault(GitHubFault::RateLimited {
        retry_after_secs: 60,
    });
    let (s, h, v) = get(&d, "/repos/o/r", Some(&auth)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset >= now + 59 && reset <= now + 61, "{reset} vs {now}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );

    d.set_fault(GitHubFault::SecondaryRateLimited {
        retry_after_secs: 30,
    });
    let (s, h, _) = get(&d, "/repos/o/r", Some(&auth)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "30");

    d.set_fault(GitHubFault::Status(502));
    let (s, _, _) = get(&d, "/repos/o/r", Some(&auth)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);

    d.set_fault(GitHubFault::None);
    let (s, _, _) = get(&d, "/repos/o/r", Some(&auth)).await;
    assert_eq!(s, StatusCode::OK);
    let statuses: Vec<u16> = d.requests().into_iter().map(|r| r.2).collect();
    assert_eq!(statuses, vec![403, 429, 502, 200]);

    let url = d.api_url();
    d.shutdown().await;
    let err = reqwest::Client::new()
        .get(format!("{url}/repos/o/r"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn pull_requests_reviews_and_owner_repositories() {
    let d = GitHubDouble::start(TOKEN).await;
    let auth = Some("Bearer ghs_test");
    for n in 1..=5 {
        d.add_pull(
            "acme/api",
            n,
            &serde_json::json!({"title": format!("PR {n}")}),
        );
    }
    d.add_pull(
        "acme/api",
        3,
        &serde_json::json!({"requested_reviewers": [{"login": "alice"}], "requested_teams": [{"slug": "core"}]}),
    );
    d.close_pull("acme/api", 5, true);
    d.add_review("acme/api", 3, "bob", "APPROVED");
    d.add_review("acme/api", 3, "dave", "COMMENTED");
    d.add_pull("acme/web", 1, &serde_json::json!({}));

    // Open ones, newest first, 2 a page, with next and last links.
    let (s, h, v) = get(&d, "/repos/acme/api/pulls?state=open&per_page=2", auth).await;
    assert_eq!(s, StatusCode::OK);
    let numbers: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![4, 3]);
    let link = h["link"].to_str().unwrap();
    assert!(
        link.contains("state=open&per_page=2&page=2>; rel=\"next\""),
        "{link}"
    );
    assert!(link.contains("page=2>; rel=\"last\""), "{link}");
    assert!(h.contains_key("x-ratelimit-remaining"));
    let (_, h, v) = get(
        &d,
        "/repos/acme/api/pulls?state=open&per_page=2&page=2",
        auth,
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(h.get("link").is_none(), "the last page");
    let (_, _, v) = get(&d, "/repos/acme/api/pulls?state=closed", auth).await;
    assert_eq!(v[0]["number"], 5);
    // One PR: merge details included.
    let (_, _, v) = get(&d, "/repos/acme/api/pulls/5", auth).await;
    assert_eq!(
        (v["state"].as_str(), v["merged"].as_bool()),
        (Some("closed"), Some(true))
    );
    let (_, _, v) = get(&d, "/repos/acme/api/pulls/3/requested_reviewers", auth).await;
    assert_eq!(v["users"][0]["login"], "alice");
    assert_eq!(v["teams"][0]["slug"], "core");
    let (_, h, v) = get(&d, "/repos/acme/api/pulls/3/reviews?per_page=1", auth).await;
    assert_eq!(v[0]["user"]["login"], "bob");
    assert_eq!(v[0]["state"], "APPROVED");
    assert!(h["link"].to_str().unwrap().contains("rel=\"next\""));
    let (s, _, _) = get(&d, "/repos/acme/api/pulls/99/reviews", auth).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Private: anonymous callers see nothing.
    let (s, _, _) = get(&d, "/repos/acme/api/pulls", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An organization's repositories; a user's only under /users.
    let (s, _, v) = get(&d, "/orgs/acme/repos?per_page=100", auth).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["acme/api", "acme/web"]);
    d.add_pull("solo/tool", 1, &serde_json::json!({}));
    d.mark_user("solo");
    let (s, _, _) = get(&d, "/orgs/solo/repos", auth).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, v) = get(&d, "/users/solo/repos", auth).await;
    assert_eq!(
        (s, v[0]["full_name"].as_str()),
        (StatusCode::OK, Some("solo/tool"))
    );
}
