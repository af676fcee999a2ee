//! "PR merged" notices to a configured channel (the Ruby prpr's `merged` plugin).

use crate::config::NotifyConfig;
use crate::github::PullRequestEvent;
use crate::notice::{Address, Notice};

use super::{Decision, Notification, pr_facts};

pub fn on_closed(e: &PullRequestEvent, cfg: &NotifyConfig) -> Decision {
    if e.pull_request.merged != Some(true) {
        return Decision::skip("closed without merging");
    }
    // With routes, a `merged` route may take it even without a merged
    // channel: the notice goes nowhere of its own ([`super::routing::NOWHERE`]).
    let channel = match (&cfg.merged_channel, cfg.routes.is_empty()) {
        (Some(c), _) => c.clone(),
        (None, false) => super::routing::NOWHERE.to_string(),
        (None, true) => return Decision::skip("no merged_channel configured"),
    };
    let pr = &e.pull_request;
    let by = pr.merged_by.as_ref().unwrap_or(&e.sender);
    Decision {
        notifications: vec![Notification::new(
            channel,
            Address::Nobody,
            Notice::Merged {
                pr: pr_facts(pr, &e.repository.full_name, &pr.html_url),
                by: by.login.clone(),
            },
        )],
        ..Decision::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{PrState, decide};
    use serde_json::json;

    fn closed(merged: bool) -> crate::github::Event {
        let mut v = base("closed", "alice");
        v["pull_request"] = pr_json("carol", false);
        v["pull_request"]["merged"] = json!(merged);
        v["pull_request"]["merged_by"] = json!({"login": "alice"});
        event("pull_request", v)
    }

    #[test]
    fn merge_notice_goes_to_the_merged_channel() {
        let mut c = cfg();
        assert!(
            decide(&closed(true), &PrState::default(), &c)
                .notifications
                .is_empty(),
            "off by default"
        );
        c.merged_channel = Some("C0MERGED01".into());
        let d = decide(&closed(true), &PrState::default(), &c);
        assert_eq!(d.notifications[0].channel, "C0MERGED01");
        assert_eq!(
            d.notifications[0].text(),
            ":tada: <https://github.com/acme/app/pull/42|acme/app#42> merged by @alice\n*Add &lt;caching&gt; &amp; stuff* · by @carol · +120 −7"
        );
        assert!(
            decide(&closed(false), &PrState::default(), &c)
                .notifications
                .is_empty()
        );
    }
}
