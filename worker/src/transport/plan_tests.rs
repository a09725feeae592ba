//! `CallPlan`'s rules, one table or case per rule, and a property test over random
//! outcome sequences.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use reqwest::StatusCode;

use super::*;

const PATH: &str = "/v1/x";
const NODES: [&str; 3] = ["http://a", "http://b", "http://c"];

fn budget() -> Budget {
    Budget {
        retry_budget: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

fn route() -> Route {
    Route::new(NODES.iter().map(|n| (*n).to_owned()).collect())
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("a valid status")
}

fn answered(code: u16, body: &str) -> Outcome {
    Outcome::Answered {
        status: status(code),
        location: None,
        body: body.as_bytes().to_vec(),
    }
}

fn redirect(to: &str, leader: Option<&str>) -> Outcome {
    let body = match leader {
        Some(l) => {
            format!(r#"{{"error":{{"code":"not_leader","message":"m","leader_addr":"{l}"}}}}"#)
        }
        None => r#"{"error":{"code":"not_leader","message":"m"}}"#.to_owned(),
    };
    Outcome::Answered {
        status: StatusCode::TEMPORARY_REDIRECT,
        location: Some(format!("{to}{PATH}")),
        body: body.into_bytes(),
    }
}

fn unavailable(code: &str) -> Outcome {
    answered(
        503,
        &format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#),
    )
}

fn refused() -> Outcome {
    Outcome::NotConnected {
        cause: "Connection refused (os error 111)".into(),
        name_not_resolved: false,
    }
}

fn unresolved() -> Outcome {
    Outcome::NotConnected {
        cause: "dns error: failed to lookup address information".into(),
        name_not_resolved: true,
    }
}

fn lost() -> Outcome {
    Outcome::Lost {
        cause: "operation timed out".into(),
    }
}

/// A call driven through a script: each send takes `send`, then gets the script's next
/// outcome (cycling); sleeps take their time. Stops at the return, or after `steps_max`.
struct Run {
    actions: Vec<(Duration, Action)>,
    route: Route,
    plan: CallPlan,
}

impl Run {
    fn returned(&self) -> Option<(Duration, &Result<Answer, ClientError>)> {
        match self.actions.last() {
            Some((at, Action::Return(r))) => Some((*at, r)),
            _ => None,
        }
    }

    fn sends(&self) -> Vec<&str> {
        let urls = self.actions.iter().filter_map(|(_, a)| match a {
            Action::Send { url } => Some(url.as_str()),
            _ => None,
        });
        urls.collect()
    }

    fn sleeps(&self) -> Vec<Duration> {
        let sleeps = self.actions.iter().filter_map(|(_, a)| match a {
            Action::Sleep(d) => Some(*d),
            _ => None,
        });
        sleeps.collect()
    }
}

fn run_with(
    retry: Retry,
    budget: Budget,
    mut route: Route,
    script: &[(Outcome, Duration)],
    steps_max: usize,
) -> Run {
    assert!(!script.is_empty());
    let started = Instant::now();
    let mut now = started;
    let mut plan = CallPlan::new(retry, budget, PATH, now);
    let mut action = plan.attempt(&mut route);
    let mut actions = Vec::new();
    let mut sent = 0;
    for _ in 0..steps_max {
        actions.push((now - started, action.clone()));
        action = match action {
            Action::Send { .. } => {
                let (outcome, took) = script[sent % script.len()].clone();
                sent += 1;
                now += took;
                plan.on_outcome(now, outcome, &mut route)
            }
            Action::Sleep(d) => {
                now += d;
                plan.attempt(&mut route)
            }
            Action::Return(_) => break,
        };
    }
    Run {
        actions,
        route,
        plan,
    }
}

fn run(retry: Retry, script: &[(Outcome, Duration)]) -> Run {
    run_with(retry, budget(), route(), script, 10_000)
}

fn instant(outcomes: &[Outcome]) -> Vec<(Outcome, Duration)> {
    outcomes
        .iter()
        .map(|o| (o.clone(), Duration::ZERO))
        .collect()
}

#[test]
fn a_redirect_is_followed_and_its_leader_remembered() {
    let r = run(
        Retry::AtMostOnce,
        &instant(&[redirect("http://c", Some("http://c/")), answered(200, "{}")]),
    );
    assert_eq!(r.sends(), ["http://a/v1/x", "http://c/v1/x"]);
    let (_, result) = r.returned().expect("returned");
    assert_eq!(result.as_ref().expect("an answer").status, StatusCode::OK);
    assert_eq!(r.route.leader(), Some("http://c"));
}

#[test]
fn a_redirect_whose_body_is_lost_is_still_followed() {
    let lost_body = Outcome::BodyLost {
        status: StatusCode::TEMPORARY_REDIRECT,
        location: Some(format!("http://c{PATH}")),
        cause: "connection reset".into(),
    };
    let r = run(
        Retry::AtMostOnce,
        &instant(&[lost_body, answered(200, "{}")]),
    );
    assert_eq!(r.sends(), ["http://a/v1/x", "http://c/v1/x"]);
    assert!(matches!(r.returned(), Some((_, Ok(_)))));
}

#[test]
fn redirects_are_capped_per_attempt() {
    let mut script = vec![redirect("http://b", Some("http://b")); REDIRECT_HOPS_MAX as usize + 1];
    script.push(answered(200, "{}"));
    let r = run(Retry::AtMostOnce, &instant(&script));
    let before_sleep = r
        .actions
        .iter()
        .take_while(|(_, a)| !matches!(a, Action::Sleep(_)))
        .count();
    assert_eq!(
        before_sleep,
        REDIRECT_HOPS_MAX as usize + 1,
        "{:?}",
        r.actions
    );
    assert_eq!(r.sleeps(), [budget().backoff_initial]);
    // The next attempt goes to the leader the redirects named.
    assert_eq!(r.sends().last(), Some(&"http://b/v1/x"));
    assert!(matches!(r.returned(), Some((_, Ok(_)))));
}

#[test]
fn a_redirect_without_location_is_retried_elsewhere() {
    let no_location = Outcome::Answered {
        status: StatusCode::TEMPORARY_REDIRECT,
        location: None,
        body: Vec::new(),
    };
    let r = run(
        Retry::AtMostOnce,
        &instant(&[no_location, answered(200, "{}")]),
    );
    assert_eq!(r.sends(), ["http://a/v1/x", "http://b/v1/x"]);
    assert_eq!(r.sleeps(), [budget().backoff_initial]);
}

#[test]
fn a_503_that_wrote_nothing_rotates_with_doubling_backoff() {
    for code in ["no_leader", "no_quorum", "unavailable", "something_new"] {
        let mut route = route();
        route.remember_leader("http://c");
        let mut script = vec![unavailable(code); 5];
        script.push(answered(200, "{}"));
        // Not idempotent: these answers prove nothing was written, so it is retried too.
        let r = run_with(Retry::AtMostOnce, budget(), route, &instant(&script), 100);
        let ms = Duration::from_millis;
        assert_eq!(
            r.sends(),
            [
                "http://c/v1/x",
                "http://a/v1/x",
                "http://b/v1/x",
                "http://c/v1/x",
                "http://a/v1/x",
                "http://b/v1/x"
            ],
            "{code}"
        );
        assert_eq!(
            r.sleeps(),
            [ms(50), ms(100), ms(200), ms(400), ms(400)],
            "{code}"
        );
        assert!(matches!(r.returned(), Some((_, Ok(_)))), "{code}");
        assert!(r.plan.last_problem().ends_with(code), "{code}");
    }
}

#[test]
fn what_each_outcome_leads_to() {
    #[derive(Debug, PartialEq)]
    enum Next {
        Send,
        Sleep,
        Answer(u16),
        Indeterminate,
    }
    let body_lost = |code| Outcome::BodyLost {
        status: status(code),
        location: None,
        cause: "reset".into(),
    };
    use Retry::{AtMostOnce as Once, Idempotent as Idem};
    let cases: Vec<(Outcome, Retry, Next)> = vec![
        // May have been applied: never sent again unless idempotent.
        (lost(), Once, Next::Indeterminate),
        (lost(), Idem, Next::Sleep),
        (body_lost(200), Once, Next::Indeterminate),
        (body_lost(200), Idem, Next::Sleep),
        (body_lost(503), Once, Next::Indeterminate),
        (unavailable("indeterminate"), Once, Next::Indeterminate),
        (unavailable("indeterminate"), Idem, Next::Sleep),
        // Proven not applied: retried either way.
        (unavailable("no_leader"), Once, Next::Sleep),
        (unavailable("no_quorum"), Once, Next::Sleep),
        (answered(503, "garbage"), Once, Next::Sleep),
        (refused(), Once, Next::Sleep),
        (unresolved(), Once, Next::Sleep),
        (redirect("http://b", None), Once, Next::Send),
        // Answers end the call; `Answer::decode` tells success from refusal.
        (answered(200, "{}"), Once, Next::Answer(200)),
        (answered(409, "{}"), Idem, Next::Answer(409)),
        (answered(500, "{}"), Idem, Next::Answer(500)),
        (answered(502, "{}"), Once, Next::Answer(502)),
    ];
    for (outcome, retry, expected) in cases {
        let mut route = route();
        let mut plan = CallPlan::new(retry, budget(), PATH, Instant::now());
        plan.attempt(&mut route);
        let got = match plan.on_outcome(Instant::now(), outcome.clone(), &mut route) {
            Action::Send { .. } => Next::Send,
            Action::Sleep(_) => Next::Sleep,
            Action::Return(Ok(a)) => Next::Answer(a.status.as_u16()),
            Action::Return(Err(ClientError::Indeterminate(_))) => Next::Indeterminate,
            other => panic!("{outcome:?} {retry:?}: {other:?}"),
        };
        assert_eq!(got, expected, "{outcome:?} {retry:?}");
    }
}

#[test]
fn outcomes_that_doubt_the_leader_forget_it() {
    let cases = [
        (refused(), true),
        (lost(), true),
        (unavailable("no_leader"), true),
        (unavailable("indeterminate"), true),
        (answered(200, "{}"), false),
        (answered(409, "{}"), false),
    ];
    for (outcome, forgets) in cases {
        let mut route = route();
        route.remember_leader("http://c");
        let mut plan = CallPlan::new(Retry::Idempotent, budget(), PATH, Instant::now());
        plan.attempt(&mut route);
        plan.on_outcome(Instant::now(), outcome.clone(), &mut route);
        assert_eq!(route.leader().is_none(), forgets, "{outcome:?}");
    }
}

#[test]
fn connection_refused_during_a_failover_keeps_trying_until_the_budget() {
    // The old leader refuses while the followers elect; a redirect to it is refused too.
    let step = Duration::from_millis(300);
    let script = [
        (refused(), step),
        (redirect("http://c", Some("http://c")), step),
        (refused(), step),
    ];
    let r = run(Retry::AtMostOnce, &script);
    let (at, result) = r.returned().expect("returned");
    let Err(ClientError::Unavailable { elapsed, message }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(*elapsed, at);
    assert!(message.contains("Connection refused"), "{message}");
    // Far more than the unresolvable-leader rule's attempts, and all of the budget.
    assert!(r.sleeps().len() > 2 * REDIRECT_UNREACHABLE_MAX as usize);
    assert!(
        at + budget().backoff_max > budget().retry_budget,
        "gave up at {at:?}"
    );
    assert!(at <= budget().retry_budget, "gave up at {at:?}");
}

#[test]
fn an_unresolvable_leader_gives_up_after_three_attempts_and_two_seconds() {
    let leader = "http://leader.internal:7001";
    // (time each send takes, attempts expected: the count rule or the time rule binds)
    let cases = [
        (
            Duration::from_millis(600),
            REDIRECT_UNREACHABLE_MAX as usize,
        ),
        (Duration::ZERO, 0),
    ];
    for (took, attempts_expected) in cases {
        let script = [(redirect(leader, Some(leader)), took), (unresolved(), took)];
        let r = run(Retry::Idempotent, &script);
        let (at, result) = r.returned().expect("returned");
        let Err(ClientError::Unavailable { message, .. }) = result else {
            panic!("{took:?}: {result:?}");
        };
        assert!(
            message.contains(leader) && message.contains("--forward-to-leader"),
            "{message}"
        );
        let attempts = r.sleeps().len() + 1;
        assert!(
            attempts >= REDIRECT_UNREACHABLE_MAX as usize,
            "{took:?}: {attempts}"
        );
        if attempts_expected > 0 {
            assert_eq!(attempts, attempts_expected, "{took:?}");
        }
        assert!(
            at >= REDIRECT_UNREACHABLE_MIN,
            "{took:?}: gave up at {at:?}"
        );
        assert!(
            at < budget().retry_budget,
            "{took:?}: the rule gives up early"
        );
    }
}

#[test]
fn an_unresolvable_configured_node_is_not_the_leader_rule() {
    // A name the user configured, not one a redirect gave: retried for the whole budget.
    let r = run(
        Retry::Idempotent,
        &[(unresolved(), Duration::from_millis(100))],
    );
    let (at, result) = r.returned().expect("returned");
    assert!(
        matches!(result, Err(ClientError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(
        at + budget().backoff_max > budget().retry_budget,
        "gave up at {at:?}"
    );
}

#[test]
fn the_unresolvable_count_restarts_after_another_outcome() {
    let leader = "http://leader.internal:7001";
    let took = Duration::from_millis(600);
    // Two unresolvable attempts, then a refused one, forever: never three in a row.
    let script = [
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
        (refused(), took),
    ];
    let r = run(Retry::Idempotent, &script);
    let (at, _) = r.returned().expect("returned");
    assert!(
        at + budget().backoff_max > budget().retry_budget,
        "gave up at {at:?}"
    );
}

#[test]
fn after_a_possible_write_the_unresolvable_rule_waits_for_the_budget() {
    let leader = "http://leader.internal:7001";
    let took = Duration::from_millis(600);
    let script = [
        (lost(), took),
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
        (redirect(leader, Some(leader)), took),
        (unresolved(), took),
    ];
    let r = run(Retry::Idempotent, &script);
    let (at, result) = r.returned().expect("returned");
    let Err(ClientError::Indeterminate(message)) = result else {
        panic!("{result:?}");
    };
    assert!(message.starts_with("gave up after"), "{message}");
    assert!(
        at + budget().backoff_max > budget().retry_budget,
        "gave up at {at:?}"
    );
}

#[test]
fn the_budget_is_respected() {
    // (retry budget, time per send)
    let cases = [
        (Duration::ZERO, Duration::ZERO),
        (Duration::from_millis(40), Duration::ZERO),
        (Duration::from_secs(1), Duration::from_millis(100)),
        (Duration::from_secs(1), Duration::from_secs(3)),
        (Duration::from_secs(30), Duration::from_millis(1)),
    ];
    for (retry_budget, took) in cases {
        let b = Budget {
            retry_budget,
            ..budget()
        };
        let r = run_with(
            Retry::Idempotent,
            b,
            route(),
            &[(unavailable("no_leader"), took)],
            100_000,
        );
        let (at, result) = r.returned().expect("returned");
        assert!(
            matches!(result, Err(ClientError::Unavailable { .. })),
            "{result:?}"
        );
        // Every sleep ended within the budget; giving up comes at the first attempt that
        // would sleep past it.
        let mut t = Duration::ZERO;
        for (started, action) in &r.actions {
            if let Action::Sleep(d) = action {
                t = *started + *d;
                assert!(
                    t <= retry_budget,
                    "{retry_budget:?} {took:?}: slept until {t:?}"
                );
            }
        }
        // The attempt after the last sleep was the last one.
        assert_eq!(at, t + took, "{retry_budget:?} {took:?}");
    }
}

/// Whether an outcome may mean the request was applied (the test's own reading of the
/// rules, independent of the plan's).
fn may_have_applied(o: &Outcome) -> bool {
    match o {
        Outcome::Lost { .. } => true,
        Outcome::BodyLost { status, .. } => *status != StatusCode::TEMPORARY_REDIRECT,
        Outcome::Answered { status, body, .. } => {
            *status == StatusCode::SERVICE_UNAVAILABLE && error_code(body) == "indeterminate"
        }
        Outcome::NotConnected { .. } => false,
    }
}

fn outcome_strategy() -> impl Strategy<Value = Outcome> {
    let node = prop_oneof![
        Just("http://a"),
        Just("http://b"),
        Just("http://x.internal")
    ];
    prop_oneof![
        Just(refused()),
        Just(unresolved()),
        Just(lost()),
        Just(answered(200, "{}")),
        Just(answered(409, "{}")),
        node.prop_map(|n| redirect(n, Some(n))),
        Just(redirect("http://b", None)),
        Just(Outcome::Answered {
            status: StatusCode::TEMPORARY_REDIRECT,
            location: None,
            body: Vec::new(),
        }),
        prop_oneof![
            Just("no_leader"),
            Just("no_quorum"),
            Just("unavailable"),
            Just("indeterminate")
        ]
        .prop_map(unavailable),
        prop_oneof![Just(200u16), Just(307), Just(503)].prop_map(|code| Outcome::BodyLost {
            status: status(code),
            location: Some(format!("http://c{PATH}")),
            cause: "reset".into(),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Over any sequence of outcomes and send times: a request that must not act twice is
    /// never sent again after an outcome that may have applied it; "unavailable" is said
    /// only when nothing may have been written; back-off stays within its bounds and no
    /// sleep ends past the budget; after the budget only the current attempt's redirects
    /// are followed; and the call ends.
    #[test]
    fn the_rules_hold_for_any_outcomes(
        idempotent in any::<bool>(),
        script in prop::collection::vec((outcome_strategy(), 0u64..3_000), 1..24),
        initial_ms in 1u64..300,
        max_factor in 1u64..40,
        budget_ms in 0u64..20_000,
    ) {
        let retry = if idempotent { Retry::Idempotent } else { Retry::AtMostOnce };
        let b = Budget {
            retry_budget: Duration::from_millis(budget_ms),
            backoff_initial: Duration::from_millis(initial_ms),
            backoff_max: Duration::from_millis(initial_ms * max_factor),
        };
        let script: Vec<(Outcome, Duration)> =
            script.into_iter().map(|(o, ms)| (o, Duration::from_millis(ms))).collect();
        // Sleeps are at least `initial` and fit in the budget: this bounds the attempts.
        let attempts_max = (budget_ms / initial_ms + 1) as usize;
        let steps_max = attempts_max * (REDIRECT_HOPS_MAX as usize + 2) + 1;
        let r = run_with(retry, b, route(), &script, steps_max + 1);
        prop_assert!(r.returned().is_some(), "no return within {steps_max} steps");

        let mut sent = 0;
        let mut maybe_written = false;
        let mut last_sleep = Duration::ZERO;
        let mut hops = 0;
        let mut sends_after_budget = 0;
        for pair in r.actions.windows(2) {
            let ((at, action), (_, next)) = (&pair[0], &pair[1]);
            match action {
                Action::Send { .. } => {
                    let (outcome, _) = &script[sent % script.len()];
                    sent += 1;
                    if *at > b.retry_budget {
                        sends_after_budget += 1;
                    }
                    if matches!(next, Action::Send { .. }) {
                        hops += 1;
                        prop_assert!(hops <= REDIRECT_HOPS_MAX, "more than the hop cap");
                    } else {
                        hops = 0;
                    }
                    if may_have_applied(outcome) {
                        maybe_written = true;
                        if retry == Retry::AtMostOnce {
                            prop_assert!(
                                matches!(next, Action::Return(Err(ClientError::Indeterminate(_)))),
                                "after {outcome:?}: {next:?}"
                            );
                        }
                    }
                }
                Action::Sleep(d) => {
                    prop_assert!(*d >= b.backoff_initial && *d <= b.backoff_max, "sleep {d:?}");
                    prop_assert!(*d >= last_sleep, "back-off shrank");
                    prop_assert!(*at + *d <= b.retry_budget, "slept past the budget");
                    last_sleep = *d;
                }
                Action::Return(_) => unreachable!("the run stops at its return"),
            }
        }
        prop_assert!(sends_after_budget <= REDIRECT_HOPS_MAX, "{sends_after_budget} sends after the budget");
        let (_, result) = r.returned().expect("checked above");
        match result {
            Err(ClientError::Unavailable { .. }) => prop_assert!(!maybe_written),
            Err(ClientError::Indeterminate(_)) => prop_assert!(maybe_written),
            Ok(_) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
