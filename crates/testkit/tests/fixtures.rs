//! The GitHub webhook fixtures in `crates/prpr/tests/fixtures/github` are the
//! cases their names say, and the README accounts for each of them.

// A test crate: a panic is a test failure with a backtrace (as clippy.toml
// allows inside #[test] fns; this extends it to the helpers here).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../prpr/tests/fixtures/github")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_fixture_is_what_its_name_says() {
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        count += 1;
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not in the README"
        );
        let v = load(&name);
        let mut parts = stem.split('.');
        let event = parts.next().unwrap();
        if let Some(action) = parts.next() {
            assert_eq!(v["action"], action, "{name}");
        }
        match event {
            "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
                assert!(v["pull_request"]["number"].is_u64(), "{name}");
            }
            "issue_comment" => assert!(v["comment"]["body"].is_string(), "{name}"),
            "ping" => assert!(v["zen"].is_string(), "{name}"),
            "push" => assert!(v["ref"].is_string(), "{name}"),
            other => panic!("unexpected event {other} in {name}"),
        }
        assert!(v["repository"].is_object() || event == "ping", "{name}");
        assert!(v["sender"]["login"].is_string(), "{name}");
    }
    assert!(count >= 13, "only {count} fixtures");

    let v = load("pull_request.review_requested.user.json");
    assert!(v["requested_reviewer"]["login"].is_string());
    assert!(v.get("requested_team").is_none());
    assert!(load("pull_request.review_request_removed.json")["requested_reviewer"].is_object());
    assert_eq!(
        load("pull_request.closed.unmerged.json")["pull_request"]["merged"],
        false
    );
    assert_eq!(
        load("pull_request.converted_to_draft.json")["pull_request"]["draft"],
        true
    );
    assert_eq!(
        load("pull_request.ready_for_review.json")["pull_request"]["draft"],
        false
    );
    assert!(
        load("issue_comment.created.issue.json")["issue"]
            .get("pull_request")
            .is_none()
    );
    assert_eq!(
        load("pull_request_review.submitted.json")["review"]["state"],
        "commented"
    );
    assert_eq!(
        load("pull_request_review.dismissed.json")["review"]["state"],
        "dismissed"
    );
}
