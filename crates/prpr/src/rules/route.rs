//! Where a notice about a pull request goes: `[filters]` and `[[routes]]`
//! as pure functions of the PR's facts.
//!
//! The caller first applies the global filters ([`filter`] with
//! `cfg.filters`); a PR they exclude gets no notice at all. Then [`route`]
//! walks the routes in order and returns every channel that takes the
//! notice, with a trace of why each route did or did not, so
//! `prpr route explain` can show it without sending anything.
//!
//! Conditions (each documented in the README's configuration section):
//!
//! | condition | matches when |
//! |---|---|
//! | `repos` | `owner/name` matches any glob (any case); empty = any repository |
//! | `base_branches` | the base branch matches any glob (case-sensitive); empty = any. An unknown base never matches a set condition |
//! | `labels` (routes) | the PR has any of the labels (any case); empty = no condition |
//! | `teams` (routes) | a review is requested from any of the teams `org/slug` (any case); empty = no condition |
//! | `kinds` (routes) | the notice is of one of the kinds; all PR kinds by default |
//! | `exclude_authors` | excluded when the author's login matches any glob (any case) |
//! | `exclude_labels` | excluded when the PR has any of the labels |
//! | `require_labels` | excluded unless the PR has one of the labels (when set) |
//! | `exclude_title` | excluded when the title contains a term (any case) or matches a `/regex/` (any case) |
//! | `drafts` | `false`: excluded while the PR is a draft |

use crate::config::{Filters, Glob, NotifyConfig, RouteFilters, TitleTerm};
use crate::notice::Kind;

/// Facts about a PR a route or filter looks at (lower-case comparisons
/// where GitHub is case-insensitive: logins, labels, repo names).
#[derive(Debug, Clone, Copy)]
pub struct PrFacts<'a> {
    /// `owner/name`.
    pub repo: &'a str,
    /// The PR author's login.
    pub author: &'a str,
    pub title: &'a str,
    pub draft: bool,
    /// Label names, in any case.
    pub labels: &'a [String],
    /// The base branch; `None` when the event does not say and prpr has not
    /// stored it. A set `base_branches` condition is then *not* met: a route
    /// or filter that asks for a branch is not satisfied by a guess, so
    /// callers should pass the base from the stored PR state when the event
    /// lacks it.
    pub base: Option<&'a str>,
    /// Teams with a pending review request, `org/slug`.
    pub teams: &'a [String],
}

/// Err(reason) when a filter excludes the PR (reason names the filter and
/// value, for logs and `route explain`).
pub fn filter(filters: &Filters, facts: &PrFacts) -> Result<(), String> {
    if !filters.repos.is_empty() && !any_glob(&filters.repos, facts.repo) {
        return Err(format!(
            "repos: {:?} matches none of {}",
            facts.repo,
            list(&filters.repos)
        ));
    }
    if !filters.base_branches.is_empty() {
        match facts.base {
            None => {
                return Err(format!(
                    "base_branches: the base branch is not known (wanted one of {})",
                    list(&filters.base_branches)
                ));
            }
            Some(base) if !any_glob(&filters.base_branches, base) => {
                return Err(format!(
                    "base_branches: {base:?} matches none of {}",
                    list(&filters.base_branches)
                ));
            }
            Some(_) => {}
        }
    }
    excluding(
        &filters.exclude_authors,
        &filters.exclude_labels,
        &filters.require_labels,
        &filters.exclude_title,
        !filters.drafts,
        facts,
    )
}

/// A route's own filters (see [`RouteFilters`]).
fn route_filter(filters: &RouteFilters, facts: &PrFacts) -> Result<(), String> {
    excluding(
        &filters.exclude_authors,
        &filters.exclude_labels,
        &filters.require_labels,
        &filters.exclude_title,
        filters.drafts == Some(false),
        facts,
    )
}

/// The exclusions shared by `[filters]` and a route's filters.
fn excluding(
    exclude_authors: &[Glob],
    exclude_labels: &[String],
    require_labels: &[String],
    exclude_title: &[TitleTerm],
    no_drafts: bool,
    facts: &PrFacts,
) -> Result<(), String> {
    if no_drafts && facts.draft {
        return Err("drafts = false: the PR is a draft".into());
    }
    if let Some(g) = exclude_authors.iter().find(|g| g.is_match(facts.author)) {
        return Err(format!(
            "exclude_authors: {:?} matches {:?}",
            facts.author,
            g.as_str()
        ));
    }
    if let Some(label) = facts
        .labels
        .iter()
        .find(|l| exclude_labels.contains(&l.to_lowercase()))
    {
        return Err(format!("exclude_labels: the PR has label {label:?}"));
    }
    if !require_labels.is_empty() && !has_any_label(facts.labels, require_labels) {
        return Err(format!(
            "require_labels: the PR has none of {require_labels:?}"
        ));
    }
    if let Some(t) = exclude_title.iter().find(|t| t.matches(facts.title)) {
        return Err(format!(
            "exclude_title: {:?} matches {:?}",
            facts.title,
            t.as_written()
        ));
    }
    Ok(())
}

/// Where a notice goes and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Channels in route order, each once; `notify.channel` when no route
    /// took the notice; empty when it goes to no channel.
    pub channels: Vec<String>,
    /// One entry per route, in order.
    pub trace: Vec<RouteTrace>,
}

impl Routed {
    /// No route took the notice, and it went to `notify.channel`.
    pub fn used_default(&self) -> bool {
        !self.channels.is_empty()
            && !self
                .trace
                .iter()
                .any(|t| t.outcome == RouteOutcome::Matched)
    }
}

/// What one route made of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTrace {
    /// Position in `[[routes]]`, from 0.
    pub index: usize,
    pub channel: String,
    pub outcome: RouteOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    /// The route took the notice.
    Matched,
    /// A condition did not hold (which, and why).
    NotMatched(String),
    /// The conditions held, but one of the route's own filters excluded the
    /// PR; such a route does not `stop` later ones.
    Filtered(String),
    /// An earlier route with `stop = true` took the notice.
    SkippedAfterStop,
}

/// Every channel the notice of `kind` goes to: routes in order (each
/// matching route: its own filters applied, then `stop`), de-duplicated in
/// order; if no route matched, `default` (notify.channel) if set. Also a
/// trace for `prpr route explain`.
///
/// The global `[filters]` are not applied here: the caller applies
/// [`filter`] with `cfg.filters` first (it also governs DMs, which do not
/// depend on routes).
pub fn route(cfg: &NotifyConfig, kind: Kind, facts: &PrFacts) -> Routed {
    let mut channels: Vec<String> = Vec::new();
    let mut trace = Vec::with_capacity(cfg.routes.len());
    let mut stopped = false;
    for (index, r) in cfg.routes.iter().enumerate() {
        let outcome = if stopped {
            RouteOutcome::SkippedAfterStop
        } else if let Err(reason) = conditions(r, kind, facts) {
            RouteOutcome::NotMatched(reason)
        } else if let Err(reason) = route_filter(&r.filters, facts) {
            RouteOutcome::Filtered(reason)
        } else {
            if !channels.contains(&r.channel) {
                channels.push(r.channel.clone());
            }
            stopped = r.stop;
            RouteOutcome::Matched
        };
        trace.push(RouteTrace {
            index,
            channel: r.channel.clone(),
            outcome,
        });
    }
    if channels.is_empty()
        && let Some(default) = &cfg.channel
    {
        channels.push(default.clone());
    }
    Routed { channels, trace }
}

/// The route's conditions (not its filters): `Err(the first that fails)`.
fn conditions(r: &crate::config::Route, kind: Kind, facts: &PrFacts) -> Result<(), String> {
    if !r.kinds.contains(&kind) {
        let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
        return Err(format!("kinds: {} is not one of {kinds:?}", kind.as_str()));
    }
    if !r.repos.is_empty() && !any_glob(&r.repos, facts.repo) {
        return Err(format!(
            "repos: {:?} matches none of {}",
            facts.repo,
            list(&r.repos)
        ));
    }
    if !r.base_branches.is_empty() {
        match facts.base {
            None => {
                return Err(format!(
                    "base_branches: the base branch is not known (wanted one of {})",
                    list(&r.base_branches)
                ));
            }
            Some(base) if !any_glob(&r.base_branches, base) => {
                return Err(format!(
                    "base_branches: {base:?} matches none of {}",
                    list(&r.base_branches)
                ));
            }
            Some(_) => {}
        }
    }
    if !r.labels.is_empty() && !has_any_label(facts.labels, &r.labels) {
        return Err(format!("labels: the PR has none of {:?}", r.labels));
    }
    if !r.teams.is_empty()
        && !facts
            .teams
            .iter()
            .any(|t| r.teams.contains(&t.to_lowercase()))
    {
        return Err(format!(
            "teams: no review requested from any of {:?}",
            r.teams
        ));
    }
    Ok(())
}

fn any_glob(globs: &[Glob], value: &str) -> bool {
    globs.iter().any(|g| g.is_match(value))
}

/// `wanted` is lower-cased at load; GitHub's labels compare in any case.
fn has_any_label(labels: &[String], wanted: &[String]) -> bool {
    labels.iter().any(|l| wanted.contains(&l.to_lowercase()))
}

fn list(globs: &[Glob]) -> String {
    let patterns: Vec<&str> = globs.iter().map(Glob::as_str).collect();
    format!("{patterns:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Route;

    fn globs(patterns: &[&str]) -> Vec<Glob> {
        patterns.iter().map(|p| Glob::new(p).unwrap()).collect()
    }

    fn branches(patterns: &[&str]) -> Vec<Glob> {
        patterns
            .iter()
            .map(|p| Glob::case_sensitive(p).unwrap())
            .collect()
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_string()).collect()
    }

    struct Pr {
        repo: &'static str,
        author: &'static str,
        title: &'static str,
        draft: bool,
        labels: Vec<String>,
        base: Option<&'static str>,
        teams: Vec<String>,
    }

    impl Pr {
        fn new() -> Pr {
            Pr {
                repo: "acme/api",
                author: "alice",
                title: "Add the thing",
                draft: false,
                labels: Vec::new(),
                base: Some("main"),
                teams: Vec::new(),
            }
        }

        fn facts(&self) -> PrFacts<'_> {
            PrFacts {
                repo: self.repo,
                author: self.author,
                title: self.title,
                draft: self.draft,
                labels: &self.labels,
                base: self.base,
                teams: &self.teams,
            }
        }
    }

    /// A change to a PR that one route filter catches.
    type Change = fn(&mut Pr);

    fn cfg(routes: Vec<Route>) -> NotifyConfig {
        NotifyConfig {
            channel: Some("C0DEFAULT1".into()),
            routes,
            ..NotifyConfig::default()
        }
    }

    fn channels(cfg: &NotifyConfig, kind: Kind, pr: &Pr) -> Vec<String> {
        route(cfg, kind, &pr.facts()).channels
    }

    // ---- filters ----

    #[test]
    fn default_filters_pass_everything_but_drafts() {
        let f = Filters::default();
        let mut pr = Pr::new();
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.draft = true;
        assert_eq!(
            filter(&f, &pr.facts()),
            Err("drafts = false: the PR is a draft".into())
        );
        let f = Filters {
            drafts: true,
            ..Filters::default()
        };
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
    }

    #[test]
    fn filter_repos_globs_any_case() {
        let f = Filters {
            repos: globs(&["acme/web-*", "acme/api"]),
            ..Filters::default()
        };
        let mut pr = Pr::new();
        pr.repo = "Acme/API";
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.repo = "acme/web-shop";
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.repo = "acme/infra";
        assert_eq!(
            filter(&f, &pr.facts()),
            Err(r#"repos: "acme/infra" matches none of ["acme/web-*", "acme/api"]"#.into())
        );
    }

    #[test]
    fn filter_base_branches() {
        let f = Filters {
            base_branches: branches(&["main", "release/*"]),
            ..Filters::default()
        };
        let mut pr = Pr::new();
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.base = Some("release/2.0");
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.base = Some("release/2.0/fix");
        assert!(filter(&f, &pr.facts()).is_err(), "* does not cross /");
        pr.base = Some("Main");
        assert_eq!(
            filter(&f, &pr.facts()),
            Err(r#"base_branches: "Main" matches none of ["main", "release/*"]"#.into()),
            "branch names are case-sensitive"
        );
        pr.base = None;
        assert!(filter(&f, &pr.facts()).unwrap_err().contains("not known"));
        assert_eq!(
            filter(&Filters::default(), &pr.facts()),
            Ok(()),
            "no condition, no need to know"
        );
    }

    #[test]
    fn filter_exclude_authors_globs_any_case() {
        let f = Filters {
            exclude_authors: globs(&["dependabot*", "ci-*"]),
            ..Filters::default()
        };
        let mut pr = Pr::new();
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        pr.author = "Dependabot-Preview";
        assert_eq!(
            filter(&f, &pr.facts()),
            Err(r#"exclude_authors: "Dependabot-Preview" matches "dependabot*""#.into())
        );
        pr.author = "ci-runner";
        assert!(filter(&f, &pr.facts()).is_err());
    }

    #[test]
    fn filter_labels_exclude_and_require_any_of() {
        let f = Filters {
            exclude_labels: strings(&["do-not-notify"]),
            require_labels: strings(&["backend", "frontend"]),
            ..Filters::default()
        };
        let mut pr = Pr::new();
        assert_eq!(
            filter(&f, &pr.facts()),
            Err(r#"require_labels: the PR has none of ["backend", "frontend"]"#.into())
        );
        pr.labels = strings(&["Frontend"]);
        assert_eq!(filter(&f, &pr.facts()), Ok(()), "any of, any case");
        pr.labels = strings(&["frontend", "Do-Not-Notify"]);
        assert_eq!(
            filter(&f, &pr.facts()),
            Err(r#"exclude_labels: the PR has label "Do-Not-Notify""#.into())
        );
    }

    #[test]
    fn filter_title_terms_and_regexes() {
        let f = Filters {
            exclude_title: vec![
                TitleTerm::parse("WIP").unwrap(),
                TitleTerm::parse("[skip ci]").unwrap(),
                TitleTerm::parse(r"/^\[draft\]/").unwrap(),
            ],
            ..Filters::default()
        };
        let mut pr = Pr::new();
        assert_eq!(filter(&f, &pr.facts()), Ok(()));
        for (title, term) in [
            ("wip: half done", "WIP"),
            ("Docs [Skip CI]", "[skip ci]"),
            ("[DRAFT] idea", r"/^\[draft\]/"),
        ] {
            pr.title = title;
            assert_eq!(
                filter(&f, &pr.facts()),
                Err(format!("exclude_title: {title:?} matches {term:?}"))
            );
        }
        pr.title = "an idea [draft]";
        assert_eq!(filter(&f, &pr.facts()), Ok(()), "the regex is anchored");
    }

    // ---- routes ----

    #[test]
    fn no_routes_means_the_default_channel_or_nothing() {
        let pr = Pr::new();
        let c = cfg(vec![]);
        let r = route(&c, Kind::ReviewRequested, &pr.facts());
        assert_eq!(r.channels, ["C0DEFAULT1"]);
        assert!(r.trace.is_empty());
        assert!(r.used_default());
        let c = NotifyConfig::default();
        assert!(
            route(&c, Kind::ReviewRequested, &pr.facts())
                .channels
                .is_empty()
        );
    }

    #[test]
    fn repos_globs_pick_routes_and_the_rest_falls_back() {
        let c = cfg(vec![Route {
            repos: globs(&["acme/api", "acme/web-*"]),
            ..Route::to("C0BACKEND1")
        }]);
        let mut pr = Pr::new();
        let r = route(&c, Kind::Merged, &pr.facts());
        assert_eq!(r.channels, ["C0BACKEND1"]);
        assert!(!r.used_default());
        assert_eq!(
            r.trace,
            [RouteTrace {
                index: 0,
                channel: "C0BACKEND1".into(),
                outcome: RouteOutcome::Matched
            }]
        );
        pr.repo = "ACME/Web-Shop";
        assert_eq!(channels(&c, Kind::Merged, &pr), ["C0BACKEND1"]);
        pr.repo = "acme/infra";
        let r = route(&c, Kind::Merged, &pr.facts());
        assert_eq!(r.channels, ["C0DEFAULT1"]);
        assert!(r.used_default());
        assert_eq!(
            r.trace[0].outcome,
            RouteOutcome::NotMatched(
                r#"repos: "acme/infra" matches none of ["acme/api", "acme/web-*"]"#.into()
            )
        );
    }

    #[test]
    fn base_branches_condition() {
        let c = cfg(vec![Route {
            base_branches: branches(&["main", "release/*"]),
            ..Route::to("C0RELEASE1")
        }]);
        let mut pr = Pr::new();
        pr.base = Some("release/1.0");
        assert_eq!(channels(&c, Kind::Opened, &pr), ["C0RELEASE1"]);
        pr.base = Some("feature/x");
        assert_eq!(channels(&c, Kind::Opened, &pr), ["C0DEFAULT1"]);
        pr.base = None;
        let r = route(&c, Kind::Opened, &pr.facts());
        assert_eq!(r.channels, ["C0DEFAULT1"]);
        assert!(
            matches!(&r.trace[0].outcome, RouteOutcome::NotMatched(m) if m.contains("not known"))
        );
    }

    #[test]
    fn labels_any_of_in_any_case() {
        let c = cfg(vec![Route {
            labels: strings(&["backend", "api"]),
            ..Route::to("C0BACKEND1")
        }]);
        let mut pr = Pr::new();
        let r = route(&c, Kind::Mention, &pr.facts());
        assert_eq!(
            r.trace[0].outcome,
            RouteOutcome::NotMatched(r#"labels: the PR has none of ["backend", "api"]"#.into())
        );
        pr.labels = strings(&["docs", "API"]);
        assert_eq!(channels(&c, Kind::Mention, &pr), ["C0BACKEND1"]);
    }

    #[test]
    fn teams_need_a_review_request_for_one_of_them() {
        let c = cfg(vec![Route {
            teams: strings(&["acme/backend"]),
            ..Route::to("C0BACKEND1")
        }]);
        let mut pr = Pr::new();
        assert_eq!(channels(&c, Kind::ReviewRequested, &pr), ["C0DEFAULT1"]);
        pr.teams = strings(&["acme/frontend"]);
        let r = route(&c, Kind::ReviewRequested, &pr.facts());
        assert_eq!(
            r.trace[0].outcome,
            RouteOutcome::NotMatched(
                r#"teams: no review requested from any of ["acme/backend"]"#.into()
            )
        );
        pr.teams = strings(&["acme/frontend", "Acme/Backend"]);
        assert_eq!(channels(&c, Kind::ReviewRequested, &pr), ["C0BACKEND1"]);
    }

    #[test]
    fn kinds_limit_a_route() {
        let c = cfg(vec![Route {
            kinds: vec![Kind::Merged, Kind::Opened],
            ..Route::to("C0SHIPPED1")
        }]);
        let pr = Pr::new();
        assert_eq!(channels(&c, Kind::Merged, &pr), ["C0SHIPPED1"]);
        assert_eq!(channels(&c, Kind::Opened, &pr), ["C0SHIPPED1"]);
        let r = route(&c, Kind::ReviewSubmitted, &pr.facts());
        assert_eq!(r.channels, ["C0DEFAULT1"]);
        assert_eq!(
            r.trace[0].outcome,
            RouteOutcome::NotMatched(
                r#"kinds: review_submitted is not one of ["merged", "opened"]"#.into()
            )
        );
    }

    #[test]
    fn every_matching_route_gets_it_once_in_order() {
        let c = cfg(vec![
            Route {
                repos: globs(&["acme/*"]),
                ..Route::to("C0ACME0001")
            },
            Route {
                labels: strings(&["backend"]),
                ..Route::to("C0BACKEND1")
            },
            Route {
                repos: globs(&["acme/api"]),
                ..Route::to("C0ACME0001")
            },
            Route::to("C0ALL00001"),
        ]);
        let mut pr = Pr::new();
        pr.labels = strings(&["backend"]);
        let r = route(&c, Kind::ReviewRequested, &pr.facts());
        assert_eq!(r.channels, ["C0ACME0001", "C0BACKEND1", "C0ALL00001"]);
        assert!(r.trace.iter().all(|t| t.outcome == RouteOutcome::Matched));
        assert_eq!(r.trace.len(), 4);
    }

    #[test]
    fn stop_skips_later_routes_only_when_the_route_matched() {
        let c = cfg(vec![
            Route {
                repos: globs(&["acme/secret-*"]),
                stop: true,
                ..Route::to("C0SECRET01")
            },
            Route {
                labels: strings(&["backend"]),
                stop: true,
                ..Route::to("C0BACKEND1")
            },
            Route::to("C0ALL00001"),
        ]);
        let mut pr = Pr::new();
        pr.repo = "acme/secret-sauce";
        pr.labels = strings(&["backend"]);
        let r = route(&c, Kind::Merged, &pr.facts());
        assert_eq!(r.channels, ["C0SECRET01"]);
        assert_eq!(
            r.trace
                .iter()
                .map(|t| t.outcome.clone())
                .collect::<Vec<_>>(),
            [
                RouteOutcome::Matched,
                RouteOutcome::SkippedAfterStop,
                RouteOutcome::SkippedAfterStop
            ]
        );
        pr.repo = "acme/api";
        assert_eq!(channels(&c, Kind::Merged, &pr), ["C0BACKEND1"]);
        pr.labels.clear();
        assert_eq!(channels(&c, Kind::Merged, &pr), ["C0ALL00001"]);
    }

    #[test]
    fn route_filters_apply_to_that_route_only_and_do_not_stop() {
        let mut backend = Route {
            repos: globs(&["acme/*"]),
            stop: true,
            ..Route::to("C0BACKEND1")
        };
        backend.filters = RouteFilters {
            exclude_authors: globs(&["intern-*"]),
            exclude_labels: strings(&["chore"]),
            require_labels: strings(&["reviewed-by-bot"]),
            exclude_title: vec![TitleTerm::parse("/^revert/").unwrap()],
            drafts: Some(false),
        };
        let c = cfg(vec![backend, Route::to("C0ALL00001")]);
        let mut pr = Pr::new();
        pr.labels = strings(&["Reviewed-By-Bot"]);
        assert_eq!(channels(&c, Kind::Merged, &pr), ["C0BACKEND1"]);

        let cases: [(Change, &str); 5] = [
            (|p| p.author = "Intern-Joe", "exclude_authors"),
            (|p| p.labels.push("CHORE".into()), "exclude_labels"),
            (|p| p.labels.clear(), "require_labels"),
            (|p| p.title = "Revert \"Add the thing\"", "exclude_title"),
            (|p| p.draft = true, "drafts = false"),
        ];
        for (change, filter_name) in cases {
            let mut pr = Pr::new();
            pr.labels = strings(&["reviewed-by-bot"]);
            change(&mut pr);
            let r = route(&c, Kind::Merged, &pr.facts());
            assert_eq!(r.channels, ["C0ALL00001"], "{filter_name}");
            assert!(
                matches!(&r.trace[0].outcome, RouteOutcome::Filtered(m) if m.starts_with(filter_name)),
                "{:?}",
                r.trace[0]
            );
            assert_eq!(r.trace[1].outcome, RouteOutcome::Matched, "not stopped");
        }
    }

    #[test]
    fn route_drafts_true_or_unset_is_no_condition() {
        let mut r = Route::to("C0X0000001");
        r.filters.drafts = Some(true);
        let c = cfg(vec![r, Route::to("C0Y0000001")]);
        let mut pr = Pr::new();
        pr.draft = true;
        assert_eq!(
            channels(&c, Kind::Opened, &pr),
            ["C0X0000001", "C0Y0000001"]
        );
    }

    #[test]
    fn filtered_everywhere_falls_back_to_the_default() {
        let mut r = Route::to("C0X0000001");
        r.filters.exclude_labels = strings(&["chore"]);
        let c = cfg(vec![r]);
        let mut pr = Pr::new();
        pr.labels = strings(&["chore"]);
        let routed = route(&c, Kind::Opened, &pr.facts());
        assert_eq!(routed.channels, ["C0DEFAULT1"]);
        assert!(routed.used_default());
    }
}
