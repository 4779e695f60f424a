//! The budget windows on PostgreSQL: a call's admission locks its
//! tenant's row and its agent's row (always in that order, so two nodes
//! never deadlock), checks both budgets and counts the call, in one
//! transaction. Outside the registry's write lock: budgets never wait for
//! an upload.

use aifn_types::Budget;
use tokio_postgres::Row;

use super::{PostgresStore, checkout, execute, get, query};
use crate::error::RegistryError;
use crate::store::Result;
use crate::{BudgetVerdict, BudgetWindow, WindowCounts};

/// The tenant's total is the row whose subject is '' (no agent's is).
const TOTAL: &str = "";

fn counts(row: &Row) -> Result<WindowCounts> {
    let calls: i64 = get(row, 1)?;
    let fuel: i64 = get(row, 2)?;
    let n = |v: i64| u64::try_from(v).map_err(|_| RegistryError::Corrupt(format!("count {v}")));
    Ok(WindowCounts {
        calls: n(calls)?,
        fuel: n(fuel)?,
    })
}

impl PostgresStore {
    pub(super) fn admit_budget(
        &self,
        w: BudgetWindow<'_>,
        agent: &Budget,
        tenant: &Budget,
    ) -> Result<BudgetVerdict> {
        let hour = w.hour_param()?;
        let (t, s) = (w.tenant.to_string(), w.subject.to_string());
        self.runtime.get()?.block_on(async {
            let mut conn = checkout(&self.writers).await?;
            conn.begin("BEGIN ISOLATION LEVEL READ COMMITTED", "begin budget")
                .await?;
            let verdict = async {
                let c = conn.client()?;
                execute(
                    c,
                    "open budget window",
                    "INSERT INTO budget_windows (tenant_id, subject, hour) \
                     VALUES ($1, $2, $3), ($1, $4, $3) ON CONFLICT DO NOTHING",
                    &[&t, &TOTAL, &hour, &s],
                )
                .await?;
                let rows = query(
                    c,
                    "lock budget window",
                    "SELECT subject, calls, fuel FROM budget_windows \
                     WHERE tenant_id = $1 AND hour = $2 AND subject IN ($3, $4) \
                     ORDER BY subject FOR UPDATE",
                    &[&t, &hour, &TOTAL, &s],
                )
                .await?;
                let mut total = WindowCounts::default();
                let mut mine = WindowCounts::default();
                for row in &rows {
                    let subject: String = get(row, 0)?;
                    if subject == TOTAL {
                        total = counts(row)?;
                    } else {
                        mine = counts(row)?;
                    }
                }
                if total.used_up(tenant) {
                    return Ok(BudgetVerdict::TenantExhausted);
                }
                if mine.used_up(agent) {
                    return Ok(BudgetVerdict::AgentExhausted);
                }
                execute(
                    c,
                    "count call",
                    "UPDATE budget_windows SET calls = calls + 1 \
                     WHERE tenant_id = $1 AND hour = $2 AND subject IN ($3, $4)",
                    &[&t, &hour, &TOTAL, &s],
                )
                .await?;
                Ok(BudgetVerdict::Admitted)
            }
            .await;
            match verdict {
                Ok(v) => conn.end("COMMIT", "commit budget").await.map(|()| v),
                Err(e) => {
                    let _ = conn.end("ROLLBACK", "roll back budget").await;
                    Err(e)
                }
            }
        })
    }

    pub(super) fn add_budget_fuel(&self, w: BudgetWindow<'_>, fuel: u64) -> Result<()> {
        let hour = w.hour_param()?;
        let fuel = i64::try_from(fuel).unwrap_or(i64::MAX);
        let (t, s) = (w.tenant.to_string(), w.subject.to_string());
        self.runtime.get()?.block_on(async {
            let conn = checkout(&self.writers).await?;
            // In the window the call ended in, which may be a new one.
            execute(
                conn.client()?,
                "count fuel",
                "INSERT INTO budget_windows (tenant_id, subject, hour, fuel) \
                 VALUES ($1, $2, $3, $5), ($1, $4, $3, $5) \
                 ON CONFLICT (tenant_id, hour, subject) \
                 DO UPDATE SET fuel = least(budget_windows.fuel + excluded.fuel, 9223372036854775807)",
                &[&t, &TOTAL, &hour, &s, &fuel],
            )
            .await
            .map(drop)
        })
    }

    pub(super) fn budget_window(
        &self,
        w: BudgetWindow<'_>,
    ) -> Result<(WindowCounts, WindowCounts)> {
        let hour = w.hour_param()?;
        let (t, s) = (w.tenant.to_string(), w.subject.to_string());
        self.read(async |c| {
            let rows = query(
                c,
                "read budget window",
                "SELECT subject, calls, fuel FROM budget_windows \
                 WHERE tenant_id = $1 AND hour = $2 AND subject IN ($3, $4)",
                &[&t, &hour, &TOTAL, &s],
            )
            .await?;
            let mut out = (WindowCounts::default(), WindowCounts::default());
            for row in &rows {
                let subject: String = get(row, 0)?;
                if subject == TOTAL {
                    out.1 = counts(row)?;
                } else {
                    out.0 = counts(row)?;
                }
            }
            Ok(out)
        })
    }
}
