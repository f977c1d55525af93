//! The Kubernetes-style REST API over the store, on the control listener:
//! `/api/v1/namespaces[/{name}]` and `/apis/{group}/{version}/[namespaces/{ns}/]
//! {plural}[/{name}]` with GET (get, list and `?watch=true`, by label and field
//! selectors), POST, PUT, PATCH and DELETE (each with `dryRun`; DELETE with its
//! `DeleteOptions`), JSON or YAML bodies, Kubernetes `Status` errors and API
//! discovery (so kubectl finds its way). Bearer tokens only.
//! A Broker has one subresource: its live tail (`…/brokers/{name}/tail`).

mod access;
mod body;
mod credentials;
mod delete_options;
mod discovery;
mod dry_run;
mod duplicate_fields;
mod field_names;
mod fields;
mod generate_name;
mod handlers;
mod list_query;
mod patch;
mod quota;
mod references;
mod revoke;
mod router;
mod service_ids;
mod status;
mod tail;
mod target;
mod unknown_fields;
mod watch;

pub use router::routes;
pub use status::ApiError;
