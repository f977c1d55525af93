//! Starting dispatchers for the routing table: each with the dispatcher
//! settings and a share of its namespace's budget. A budget lives as long as a
//! dispatcher of its namespace holds it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::mesh::dispatch::{
    Budget, BudgetLimits, DispatchDeps, Dispatcher, DispatcherSettings, Target,
};

pub struct Dispatchers {
    settings: DispatcherSettings,
    namespace_budget: BudgetLimits,
    deps: Arc<DispatchDeps>,
    budgets: HashMap<String, Arc<Budget>>,
}

impl Dispatchers {
    pub fn new(
        settings: DispatcherSettings,
        namespace_budget: BudgetLimits,
        deps: Arc<DispatchDeps>,
    ) -> Self {
        Self {
            settings,
            namespace_budget,
            deps,
            budgets: HashMap::new(),
        }
    }

    pub fn spawn(&mut self, target: Target, namespace: &str) -> Arc<Dispatcher> {
        let limit = self.namespace_budget;
        let budget = self
            .budgets
            .entry(namespace.to_string())
            .or_insert_with(|| Budget::new(limit))
            .clone();
        Dispatcher::spawn(target, self.settings, budget, self.deps.clone())
    }

    /// Forgets the budgets no dispatcher holds any more.
    pub fn forget_unused_budgets(&mut self) {
        self.budgets
            .retain(|_, budget| Arc::strong_count(budget) > 1);
    }
}
