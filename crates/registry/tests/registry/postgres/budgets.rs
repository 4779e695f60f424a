//! Budget windows a fleet counts together: admissions from two nodes at
//! once never pass a budget, the tenant's budget holds across its agents,
//! fuel is counted in the window a call ends in; SQLite counts nothing.

use std::sync::Barrier;

use aifn_registry::{BudgetVerdict, BudgetWindow, Registry};
use aifn_types::{Budget, Subject, TenantId};

use crate::{NoAudit, postgres_fixture, sqlite_fixture, tenant};

fn calls(n: u64) -> Budget {
    Budget {
        calls_per_hour: Some(n),
        fuel_per_hour: None,
    }
}

fn window<'a>(t: &'a TenantId, s: &'a Subject, hour: u64) -> BudgetWindow<'a> {
    BudgetWindow {
        tenant: t,
        subject: s,
        hour,
    }
}

#[test]
fn two_nodes_admitting_at_once_never_pass_the_budget() {
    let f = postgres_fixture();
    let second = f.reopen(NoAudit);
    let nodes: [&Registry; 2] = [&f.reg, &second];
    assert!(nodes.iter().all(|n| n.counts_budgets()));
    let acme = tenant("acme");
    let bot = Subject::new("bot").expect("subject");
    const THREADS: usize = 8;
    const TRIES: usize = 15;
    let barrier = Barrier::new(THREADS);
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, node, acme, bot) = (&barrier, nodes[i % 2], &acme, &bot);
                s.spawn(move || {
                    barrier.wait();
                    (0..TRIES)
                        .filter(|_| {
                            let v = node
                                .budget_admit(window(acme, bot, 7), &calls(50), &Budget::default())
                                .expect("admit");
                            v == BudgetVerdict::Admitted
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(admitted, 50, "of {} tries", THREADS * TRIES);
    let (agent, total) = second
        .budget_counts(window(&acme, &bot, 7))
        .expect("counts");
    assert_eq!((agent.calls, total.calls), (50, 50));
    // The next hour starts from zero.
    let v = f
        .reg
        .budget_admit(window(&acme, &bot, 8), &calls(50), &Budget::default())
        .expect("admit");
    assert_eq!(v, BudgetVerdict::Admitted);
}

#[test]
fn the_tenant_budget_holds_across_agents_and_fuel_counts_where_calls_end() {
    let f = postgres_fixture();
    let acme = tenant("acme");
    let (a, b) = (
        Subject::new("a").expect("subject"),
        Subject::new("b").expect("subject"),
    );
    let none = Budget::default();
    for s in [&a, &a, &b] {
        let v = f.reg.budget_admit(window(&acme, s, 1), &none, &calls(3));
        assert_eq!(v.expect("admit"), BudgetVerdict::Admitted);
    }
    let v = f.reg.budget_admit(window(&acme, &b, 1), &none, &calls(3));
    assert_eq!(v.expect("admit"), BudgetVerdict::TenantExhausted);
    let v = f.reg.budget_admit(window(&acme, &a, 1), &calls(2), &none);
    assert_eq!(v.expect("admit"), BudgetVerdict::AgentExhausted);
    // Another tenant's window is its own.
    let other = tenant("globex");
    let v = f.reg.budget_admit(window(&other, &a, 1), &none, &calls(3));
    assert_eq!(v.expect("admit"), BudgetVerdict::Admitted);

    // Fuel: in the hour the call ended in, a window not opened by a call.
    f.reg
        .budget_add_fuel(window(&acme, &a, 2), 700)
        .expect("fuel");
    f.reg
        .budget_add_fuel(window(&acme, &b, 2), 300)
        .expect("fuel");
    let (agent, total) = f.reg.budget_counts(window(&acme, &a, 2)).expect("counts");
    assert_eq!((agent.calls, agent.fuel, total.fuel), (0, 700, 1000));
    let fuel = Budget {
        fuel_per_hour: Some(1000),
        calls_per_hour: None,
    };
    let v = f.reg.budget_admit(window(&acme, &b, 2), &none, &fuel);
    assert_eq!(v.expect("admit"), BudgetVerdict::TenantExhausted);
}

#[test]
fn sqlite_counts_no_budgets_and_says_so() {
    let f = sqlite_fixture();
    assert!(!f.reg.counts_budgets());
    let acme = tenant("acme");
    let bot = Subject::new("bot").expect("subject");
    let err = f
        .reg
        .budget_admit(window(&acme, &bot, 1), &calls(1), &Budget::default())
        .expect_err("no counters");
    assert!(err.to_string().contains("count budgets"), "{err}");
}
