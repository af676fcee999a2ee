//! The GitHub double's deliveries, redelivery, App auth, rate budget and
//! team members answer as the real REST API does.

// A test crate: a panic is a test failure with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::github::{APP_PRIVATE_KEY_PEM, GitHubDouble, GitHubFault, HookRef};

const TOKEN: &str = "ghp_test";

async fn call(
    d: &GitHubDouble,
    method: reqwest::Method,
    path: &str,
    auth: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", d.api_url())
    };
    let resp = reqwest::Client::new()
        .request(method, url)
        .header("authorization", format!("Bearer {auth}"))
        .header("user-agent", "testkit")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(iss: u64, iat: u64, exp: u64) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(APP_PRIVATE_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"iss": iss.to_string(), "iat": iat, "exp": exp}),
        &key,
    )
    .unwrap()
}

/// A receiver that records what it is sent and answers `status`.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |h: axum::http::HeaderMap, body: String| {
        let g = g.clone();
        async move {
            g.lock().unwrap().push((h, body));
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/webhook"), got)
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_a_cursor() {
    let d = GitHubDouble::start(TOKEN).await;
    let id = d.add_hook_with_secret(
        "acme/app",
        "https://prpr.example/webhook",
        "s",
        &["pull_request"],
    );
    let hook = HookRef::Repo {
        repo: "acme/app".into(),
        id,
    };
    let mut guids = Vec::new();
    for i in 0..5u64 {
        let rec = d.add_delivery(
            &hook,
            "pull_request",
            &json!({"action": "opened", "n": i}),
            if i % 2 == 0 { 502 } else { 200 },
            Duration::from_secs(60 * (10 - i)),
        );
        guids.push(rec.guid);
    }
    let (s, h, v) = call(
        &d,
        reqwest::Method::GET,
        &format!("/repos/acme/app/hooks/{id}/deliveries?per_page=2"),
        TOKEN,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let page: Vec<Value> = v.as_array().unwrap().clone();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["guid"], guids[4].as_str());
    assert_eq!(page[0]["status"], "Invalid HTTP Response: 502");
    assert_eq!(page[0]["status_code"], 502);
    assert_eq!(page[0]["redelivery"], false);
    assert_eq!(page[0]["event"], "pull_request");
    assert_eq!(page[0]["action"], "opened");
    assert!(page[0]["delivered_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(page[1]["status"], "OK");
    let mut next = h["link"].to_str().unwrap().to_owned();
    let mut seen = 2;
    loop {
        let url = next
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        assert!(url.contains("cursor="), "{url}");
        let (_, h, v) = call(&d, reqwest::Method::GET, &url, TOKEN).await;
        seen += v.as_array().unwrap().len();
        match h.get("link") {
            Some(l) => next = l.to_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 5);
    // per_page out of range, unknown hook.
    let (s, _, _) = call(
        &d,
        reqwest::Method::GET,
        &format!("/repos/acme/app/hooks/{id}/deliveries?per_page=101"),
        TOKEN,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = call(
        &d,
        reqwest::Method::GET,
        "/repos/acme/app/hooks/999/deliveries",
        TOKEN,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_attempt_posts_the_signed_payload_and_records_a_redelivery() {
    let d = GitHubDouble::start(TOKEN).await;
    let (url, got) = receiver(202).await;
    let id = d.add_org_hook("acme", &url, "hook-secret", &["pull_request"]);
    let hook = HookRef::Org {
        org: "acme".into(),
        id,
    };
    let payload = json!({"action": "review_requested", "number": 7});
    let missed = d.add_failed_delivery(&hook, "pull_request", &payload, Duration::from_secs(120));
    let (s, _, v) = call(&d, reqwest::Method::GET, "/orgs/acme/hooks", TOKEN).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["config"]["url"], url.as_str());
    let (s, _, _) = call(
        &d,
        reqwest::Method::POST,
        &format!("/orgs/acme/hooks/{id}/deliveries/{}/attempts", missed.id),
        TOKEN,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let all = d.wait_for_deliveries(2, Duration::from_secs(5)).await;
    assert_eq!(all.len(), 2);
    assert!(all[1].redelivery);
    assert_eq!(all[1].guid, missed.guid);
    assert_eq!((all[1].status.as_str(), all[1].status_code), ("OK", 202));
    let (headers, body) = got.lock().unwrap()[0].clone();
    assert_eq!(body, payload.to_string());
    assert_eq!(headers["x-github-delivery"], missed.guid.as_str());
    assert_eq!(headers["x-github-event"], "pull_request");
    assert_eq!(
        headers["x-hub-signature-256"].to_str().unwrap(),
        testkit::sign::sha256_header(b"hook-secret", body.as_bytes())
    );
    assert_eq!(d.redelivery_requests(), vec![missed.id]);
    // An unknown delivery: 404.
    let (s, _, _) = call(
        &d,
        reqwest::Method::POST,
        &format!("/orgs/acme/hooks/{id}/deliveries/9999/attempts"),
        TOKEN,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_budget_and_secondary_limit() {
    let d = GitHubDouble::start(TOKEN).await;
    d.add_team("acme", "core", &["a"]);
    d.set_rate_limit(3, Duration::from_secs(120));
    let path = "/orgs/acme/teams/core/members";
    for left in [2, 1, 0] {
        let (s, h, _) = call(&d, reqwest::Method::GET, path, TOKEN).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-ratelimit-remaining"], left.to_string().as_str());
        assert_eq!(h["x-ratelimit-limit"], "3");
        let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset >= now() + 100);
    }
    let (s, h, v) = call(&d, reqwest::Method::GET, path, TOKEN).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("rate limit exceeded")
    );

    d.set_rate_limit(100, Duration::from_secs(60));
    d.set_fault_for(
        GitHubFault::SecondaryForbidden {
            retry_after_secs: 3,
        },
        1,
    );
    let (s, h, _) = call(&d, reqwest::Method::GET, path, TOKEN).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h["retry-after"], "3");
    let (s, _, _) = call(&d, reqwest::Method::GET, path, TOKEN).await;
    assert_eq!(s, StatusCode::OK, "the fault was for one request");
}

#[tokio::test]
async fn app_jwt_and_installation_tokens() {
    let d = GitHubDouble::start(TOKEN).await;
    d.enable_app(4242);
    let inst = d.add_installation("acme");
    d.add_team("acme", "core", &["alice", "bob", "carol"]);
    let good = jwt(4242, now() - 60, now() + 540);
    let (s, _, v) = call(&d, reqwest::Method::GET, "/app/installations", &good).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["id"], inst);
    let (s, _, v) = call(
        &d,
        reqwest::Method::GET,
        "/repos/acme/app/installation",
        &good,
    )
    .await;
    assert_eq!((s, v["id"].as_u64()), (StatusCode::OK, Some(inst)));

    // Expired, too long, wrong app, wrong key: 401.
    for bad in [
        jwt(4242, now() - 700, now() - 10),
        jwt(4242, now() - 60, now() + 3600),
        jwt(1, now() - 60, now() + 540),
    ] {
        let (s, _, _) = call(&d, reqwest::Method::GET, "/app/installations", &bad).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let mut tampered = good.clone();
    tampered.push('x');
    let (s, _, _) = call(&d, reqwest::Method::GET, "/app/installations", &tampered).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A token is not a JWT.
    let (s, _, _) = call(&d, reqwest::Method::GET, "/app/installations", TOKEN).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An installation token works until it expires.
    let (s, _, v) = call(
        &d,
        reqwest::Method::POST,
        &format!("/app/installations/{inst}/access_tokens"),
        &good,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let (s, h, v) = call(
        &d,
        reqwest::Method::GET,
        "/orgs/acme/teams/core/members?per_page=2",
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(h["link"].to_str().unwrap().contains("page=2"));
    d.set_token_lifetime(Duration::ZERO);
    let (_, _, v) = call(
        &d,
        reqwest::Method::POST,
        &format!("/app/installations/{inst}/access_tokens"),
        &good,
    )
    .await;
    let expired = v["token"].as_str().unwrap().to_owned();
    let (s, _, v) = call(
        &d,
        reqwest::Method::GET,
        "/orgs/acme/teams/core/members",
        &expired,
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Bad credentials"))
    );
    assert_eq!(d.tokens_issued(), 2);
}
