//! The canary build (feature `canary-accept-stale-tokens`): a deliberately broken state
//! machine whose fencing accepts stale tokens, for the fault suite's canary run. These
//! tests prove the bug is there, and that the broken paths still keep every invariant
//! (the driver checks them after each apply). Run with:
//! `cargo test --release -p taskswarm-state-machine --features canary-accept-stale-tokens --test canary`
#![cfg(feature = "canary-accept-stale-tokens")]

mod common;

use common::*;
use taskswarm_state_machine::*;

/// Enqueue, claim with a short lease, let it expire, claim again: returns the first
/// (stale) and second (live) claims of the one task.
fn reclaimed(s: &mut Sm) -> (ClaimedTask, ClaimedTask) {
    s.add("q", "k");
    let old = s
        .claim_with(Claim {
            lease_ms: Some(limits::LEASE_MS_MIN),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.advance(limits::LEASE_MS_MIN);
    s.tick();
    assert_ne!(
        s.state(old.id),
        TaskState::Running,
        "the first lease expired"
    );
    s.advance(limits::DEFAULT_BACKOFF_INITIAL_MS);
    s.tick();
    let new = s.claim_one("q");
    assert_eq!(new.id, old.id);
    assert!(new.token > old.token);
    assert_eq!(s.task(new.id).attempt, 2);
    (old, new)
}

#[test]
fn canary_accepts_a_stale_complete_after_a_reclaim() {
    let mut s = Sm::default();
    let (old, new) = reclaimed(&mut s);
    assert_eq!(
        s.complete(old.id, old.token),
        Ok(Reply::Completed { duplicate: false }),
        "the canary must accept the stale token"
    );
    let t = s.task(old.id);
    assert_eq!(
        (t.state, t.result.as_deref()),
        (TaskState::Succeeded, Some("\"ok\""))
    );
    assert!(t.lease.is_none());
    assert_eq!(
        t.last_event().unwrap().kind,
        EventKind::Succeeded { token: old.token }
    );
    // The live holder's complete now finds the task already succeeded with its token.
    assert_eq!(
        s.complete(new.id, new.token),
        Ok(Reply::Completed { duplicate: true })
    );
}

#[test]
fn canary_accepts_a_stale_heartbeat_fail_and_release() {
    let mut s = Sm::default();
    let (old, new) = reclaimed(&mut s);
    let ack = s.heartbeat(old.id, old.token).unwrap();
    assert_eq!(ack.task, old.id);
    assert_eq!(s.state(old.id), TaskState::Running);
    assert_eq!(s.task(old.id).lease.as_ref().unwrap().token, new.token);

    assert_eq!(
        s.fail(old.id, old.token, true),
        Ok(Reply::FailRecorded {
            state: TaskState::Scheduled
        })
    );

    let mut s = Sm::default();
    let (old, _new) = reclaimed(&mut s);
    assert!(matches!(
        s.apply(Command::Release {
            task: old.id,
            token: old.token,
            delay_ms: 0,
        }),
        Ok(Reply::Released {
            state: TaskState::Queued
        })
    ));
}

#[test]
fn canary_keeps_the_other_checks() {
    let mut s = Sm::default();
    let (old, new) = reclaimed(&mut s);
    // A token newer than the live lease was never this task's: still refused.
    let newer = Token(s.sm.last_token().0 + 1);
    assert_eq!(code(s.complete(old.id, newer)), "lease_lost");
    // An unknown task is still not found.
    assert_eq!(code(s.complete(TaskId(999), old.token)), "not_found");
    // The live holder still works, and after it finished the stale token is refused.
    assert_eq!(
        s.complete(new.id, new.token),
        Ok(Reply::Completed { duplicate: false })
    );
    assert_eq!(code(s.complete(old.id, old.token)), "lease_lost");

    // A stale token on a task that is not running (queued for its retry) is refused.
    let mut s = Sm::default();
    s.add("q", "k");
    let c = s
        .claim_with(Claim {
            lease_ms: Some(limits::LEASE_MS_MIN),
            ..claim("q", 1)
        })
        .unwrap()
        .pop()
        .unwrap();
    s.advance(limits::LEASE_MS_MIN);
    s.tick();
    s.advance(limits::DEFAULT_BACKOFF_INITIAL_MS);
    s.tick();
    assert_eq!(s.state(c.id), TaskState::Queued);
    assert_eq!(code(s.complete(c.id, c.token)), "lease_lost");
}
