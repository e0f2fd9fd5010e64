//! The proto is the checked source of truth for the REST API.
//!
//! Each `ChatService` RPC's `google.api.http` rule, read from the descriptor
//! set the proto crate embeds ([`descriptor`]), is compared with the edge:
//!
//! - [`routes`]: rules and routes, both ways: every rule is a route of
//!   [`http_edge::routes::routes`], and every route is a rule or a documented
//!   exception (the probes); that list is the router's (each path's `Allow`);
//!   and each rule, called on the running edge, reaches its RPC with the
//!   path's values in the fields its template names.
//! - [`names`]: a field's REST name (path, query, body, response) is its
//!   proto3 JSON name, or the table there says otherwise and why (the same
//!   list as the proto's header comment).

mod descriptor;
mod names;
mod routes;

use descriptor::{Contract, HttpRule, Rpc};

/// The path variables of a template, in order: `{stream_id}` → `stream_id`.
fn variables(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .map(|part| part.split_once('}').expect("a closed `{`").0)
        .collect()
}

/// The RPCs that have a rule, with it; never none (extension options lost
/// on the way into the embedded descriptor set would look like none).
fn ruled(contract: &Contract) -> Vec<(&Rpc, &HttpRule)> {
    let ruled: Vec<_> = contract
        .rpcs
        .iter()
        .filter_map(|rpc| rpc.http.as_ref().map(|rule| (rpc, rule)))
        .collect();
    assert!(
        !ruled.is_empty(),
        "no google.api.http rule in the embedded descriptor set"
    );
    ruled
}
