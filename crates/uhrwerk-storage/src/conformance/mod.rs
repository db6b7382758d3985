//! Conformance suites, one per storage trait, that every backend runs from its own tests:
//!
//! ```text
//! let store = MyStore::open(...);
//! uhrwerk_storage::conformance::executions::run(&store).await;
//! uhrwerk_storage::conformance::visibility::run(&store, &store).await;
//! uhrwerk_storage::conformance::metadata::run(&store).await;
//! ```
//!
//! Each scenario uses namespaces and ids of its own, so the scenarios of all three suites can
//! share one store, in any order. `scenario(.., name)` runs one of them (see `SCENARIOS`), so a
//! backend can also give each scenario a fresh store and a test of its own. [`fixtures`] has
//! the builders the suites use, for a backend's own tests.

pub mod executions;
pub mod fixtures;
pub mod metadata;
pub mod visibility;

/// Declares a suite's scenarios: `SCENARIOS` (their names), `scenario` (one by name) and `run`
/// (all of them, in order). Takes the parameters of every scenario and the arguments that pass
/// them on.
macro_rules! suite {
    (($($arg:ident: $ty:ty),*) $call:tt { $($name:ident),* $(,)? }) => {
        /// The names of the suite's scenarios, in the order `run` runs them.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        /// Runs the scenario called `name`.
        ///
        /// # Panics
        /// When a check fails, or when no scenario has that name.
        pub async fn scenario($($arg: $ty,)* name: &str) {
            match name {
                $(stringify!($name) => $name $call.await,)*
                _ => panic!("no scenario called {name}"),
            }
        }

        /// Runs every scenario of the suite.
        ///
        /// # Panics
        /// When a check fails.
        pub async fn run($($arg: $ty),*) {
            for name in SCENARIOS {
                eprintln!("conformance: {}::{name}", module_path!());
                scenario($($arg,)* name).await;
            }
        }
    };
}

use suite;
