//! Operations as tables of steps. A step is a name, what it runs, and the step
//! that undoes it: provisioning runs its table in order, deprovisioning runs the
//! undos of the same table, last first. The numbers in an operation's description
//! ("step 2/5 label-namespace") come from the table, as does the list in the
//! README's Provisioning section (a test in `steps` holds the two together).

use futures::future::BoxFuture;

use super::job::Job;
use crate::store::StoreError;

/// What a step says about itself after an attempt.
pub enum Progress {
    Done,
    /// Not yet: something it needs is not ready. Retried with backoff.
    Wait(String),
    /// Cannot succeed: the operation fails with this reason.
    Fail(String),
}

/// One attempt at a step; a store error counts as a reason to wait.
pub type Attempt = for<'a> fn(&'a Job) -> BoxFuture<'a, Result<Progress, StoreError>>;

pub struct Step {
    pub name: &'static str,
    /// What it does and what it waits on, as the README lists it. Documentation
    /// only: the test that holds the README to the tables reads it.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the README test"))]
    pub doc: &'static str,
    pub run: Attempt,
    /// Runs under the namespace's lock. Consecutive such steps hold it throughout,
    /// so no other operation in the namespace sees their work half done.
    pub namespace_lock: bool,
    /// The step that takes back what this one made, when deprovisioning.
    pub undo: Option<&'static Step>,
}

/// The steps one operation runs, in order.
pub struct Plan {
    steps: Vec<&'static Step>,
}

impl Plan {
    /// A table's steps, in order.
    pub fn forward(table: &'static [Step]) -> Self {
        Self {
            steps: table.iter().collect(),
        }
    }

    /// What undoes a table: the undos of its steps, last first.
    pub fn undoing(table: &'static [Step]) -> Self {
        Self {
            steps: table.iter().rev().filter_map(|step| step.undo).collect(),
        }
    }

    /// Each step with its label in descriptions: `step <n>/<total> <name>`.
    pub fn numbered(&self) -> impl Iterator<Item = (String, &'static Step)> + '_ {
        let total = self.steps.len();
        self.steps
            .iter()
            .enumerate()
            .map(move |(i, step)| (format!("step {}/{total} {}", i + 1, step.name), *step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(_: &Job) -> BoxFuture<'_, Result<Progress, StoreError>> {
        Box::pin(async { Ok(Progress::Done) })
    }

    const fn step(name: &'static str, undo: Option<&'static Step>) -> Step {
        Step {
            name,
            doc: "",
            run: done,
            namespace_lock: false,
            undo,
        }
    }

    const TABLE: &[Step] = &[
        step("create-a", Some(&step("delete-a", None))),
        step("await-a", None),
        step("create-b", Some(&step("delete-b", None))),
    ];

    fn labels(plan: &Plan) -> Vec<String> {
        plan.numbered().map(|(label, _)| label).collect()
    }

    #[test]
    fn steps_are_numbered_in_table_order() {
        assert_eq!(
            labels(&Plan::forward(TABLE)),
            ["step 1/3 create-a", "step 2/3 await-a", "step 3/3 create-b"]
        );
    }

    #[test]
    fn undoing_runs_the_undos_last_first_and_numbers_them_anew() {
        assert_eq!(
            labels(&Plan::undoing(TABLE)),
            ["step 1/2 delete-b", "step 2/2 delete-a"]
        );
    }

    #[test]
    fn an_empty_table_has_no_steps() {
        assert_eq!(labels(&Plan::forward(&[])), Vec::<String>::new());
        assert_eq!(labels(&Plan::undoing(&[])), Vec::<String>::new());
    }
}
