//! The console: a web page served at `/console/` on the control listener, its
//! assets compiled into the binary. It is a client of the public APIs like any
//! other — the resource API (lists and watches), the OSB API — with the bearer
//! token its user signs in with, so what a namespace token may see and change
//! is enforced by those APIs, not by the page. Its own endpoints answer what
//! the page needs besides: who a token is, whether a CESQL expression
//! compiles (and where it does not), whether a filter passes a sample event,
//! and the delivery counts behind the edge rates. The Broker's and the
//! Application's ingress for its test events are `ingress::console_routes`.

mod api;
mod assets;
mod filter_test;
mod routes;
mod watch;

pub use routes::routes;
