//! Rules and routes: the proto's `google.api.http` rules against the edge's
//! route list ([`http_edge::routes::routes`]) and against the running router.

use std::collections::{BTreeMap, BTreeSet};

use http_edge::routes;
use reqwest::Method;
use serde_json::{Value, json};

use super::descriptor::{Contract, HttpRule, Kind, Message, Rpc};
use super::{ruled, variables};
use crate::{
    fake_chat::{FakeChatServer, rpc},
    helpers::{STREAM_ID, TOKEN, spawn_app},
};

/// The public service: every RPC has a rule.
const PUBLIC_SERVICE: &str = "allmine.chat.v1.ChatService";

/// Routes of the edge with no RPC behind them, on purpose.
const NOT_IN_THE_CONTRACT: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/healthz",
        "liveness probe: answered by the edge alone, calls nothing",
    ),
    (
        "GET",
        "/readyz",
        "readiness probe: asks chat-service's grpc.health.v1, not ChatService",
    ),
];

/// A value for each path variable, distinct so that a swap shows.
fn path_sample(field: &str) -> &'static str {
    match field {
        "stream_id" => STREAM_ID,
        "message_id" => "64d15f9e2e6c8f4d5a1230a1",
        "user_id" => "64d15f9e2e6c8f4d5a1230b2",
        other => panic!("add a sample value for the path variable `{other}`"),
    }
}

/// The template as the edge writes it: each `{field}` as `{jsonName}`. Each
/// variable must be a plain string field of the request (no `field=**`).
fn rest_template(rpc: &Rpc, rule: &HttpRule, input: &Message) -> String {
    let mut template = rule.path.clone();
    for variable in variables(&rule.path) {
        let field = input.field(variable).unwrap_or_else(|| {
            panic!(
                "{}: path variable `{variable}` is not a field of {}",
                rpc.name, rpc.input
            )
        });
        assert_eq!(field.kind, Kind::String, "{}: `{variable}`", rpc.name);
        template = template.replace(
            &format!("{{{variable}}}"),
            &format!("{{{}}}", field.json_name),
        );
    }
    template
}

/// (method, REST path template) → RPC name, for every rule.
fn rules(contract: &Contract) -> BTreeMap<(String, String), String> {
    let mut rules = BTreeMap::new();
    for (rpc, rule) in ruled(contract) {
        assert_eq!(
            rule.additional_bindings, 0,
            "{}: the edge serves one binding per RPC",
            rpc.name
        );
        let key = (
            rule.method.clone(),
            rest_template(rpc, rule, contract.message(&rpc.input)),
        );
        if let Some(other) = rules.insert(key.clone(), rpc.name.clone()) {
            panic!("{key:?} is the rule of both {other} and {}", rpc.name);
        }
    }
    rules
}

fn listed_routes() -> BTreeSet<(String, String)> {
    routes::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect()
}

#[test]
fn every_public_rpc_has_a_rule_and_only_those() {
    let contract = Contract::load();
    let rpcs: Vec<_> = contract.rpcs.iter().collect();
    assert!(
        rpcs.iter().any(|rpc| rpc.name == "SubscribeMessages"),
        "the descriptor set was read: {rpcs:?}"
    );
    for rpc in rpcs {
        let public = rpc.service == PUBLIC_SERVICE;
        assert_eq!(
            rpc.http.is_some(),
            public,
            "{}.{}: the public service's RPCs have a rule, the internal admin service's none",
            rpc.service,
            rpc.name
        );
    }
}

#[test]
fn every_rule_is_a_route_and_every_route_a_rule_or_a_documented_exception() {
    let rules = rules(&Contract::load());
    let routes = listed_routes();
    let exceptions: BTreeSet<(String, String)> = NOT_IN_THE_CONTRACT
        .iter()
        .map(|(method, path, _why)| ((*method).to_owned(), (*path).to_owned()))
        .collect();

    let unserved: Vec<_> = rules
        .iter()
        .filter(|(route, _)| !routes.contains(*route))
        .collect();
    assert!(
        unserved.is_empty(),
        "rules the edge does not serve: {unserved:?}"
    );
    let unruled: Vec<_> = routes
        .iter()
        .filter(|route| !rules.contains_key(*route) && !exceptions.contains(*route))
        .collect();
    assert!(
        unruled.is_empty(),
        "routes with no rule and no documented reason: {unruled:?}"
    );
    let stale: Vec<_> = exceptions.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "exceptions that are not routes: {stale:?}"
    );
    let ruled: Vec<_> = exceptions
        .iter()
        .filter(|route| rules.contains_key(*route))
        .collect();
    assert!(ruled.is_empty(), "exceptions that have a rule: {ruled:?}");
}

/// `routes::routes()` is a list beside the router; this checks it is the
/// router's: per path, the methods in `Allow`; and as many paths as
/// `.route(` calls in the router's source, so that a route added without a
/// list entry fails here.
#[tokio::test]
async fn the_route_list_is_what_the_router_serves() {
    let app = spawn_app().await;
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in listed_routes() {
        by_path.entry(path).or_default().insert(method);
    }
    let source = include_str!("../../../src/routes/mod.rs");
    assert_eq!(
        source.matches(".route(").count(),
        by_path.len(),
        "routes::routes() lists {} paths, the router has another number of `.route(` calls",
        by_path.len()
    );

    for (template, methods) in &by_path {
        assert!(!methods.contains("PATCH"), "PATCH is the probe method here");
        let mut path = template.clone();
        for variable in variables(template) {
            path = path.replace(&format!("{{{variable}}}"), "64d15f9e2e6c8f4d5a1230c3");
        }
        let response = app.edge.call(Method::PATCH, &path, None, Some(TOKEN)).await;
        assert_eq!(response.status(), 405, "PATCH {path}");
        let allow: BTreeSet<String> = response
            .headers()
            .get("allow")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|method| method.trim().to_owned())
            .filter(|method| !method.is_empty())
            .collect();
        let mut expected = methods.clone();
        // axum answers HEAD wherever it answers GET.
        if expected.contains("GET") {
            expected.insert("HEAD".to_owned());
        }
        assert_eq!(allow, expected, "Allow of {template}");
    }
}

/// Each rule, called on the running edge, reaches the RPC it annotates, with
/// each path value in the field its template names.
#[tokio::test]
async fn each_rule_reaches_its_rpc_with_the_path_values_in_their_fields() {
    let contract = Contract::load();
    let app = spawn_app().await;
    for (rpc, rule) in ruled(&contract) {
        let mut path = rule.path.clone();
        let mut expected = BTreeMap::new();
        for variable in variables(&rule.path) {
            path = path.replace(&format!("{{{variable}}}"), path_sample(variable));
            expected.insert(variable.to_owned(), path_sample(variable).to_owned());
        }
        let method = Method::from_bytes(rule.method.as_bytes()).expect("an HTTP method");
        let body = body_sample(&rpc.name);
        assert_eq!(
            body.is_some(),
            rule.body == "*",
            "{}: a sample body exactly when the rule has one",
            rpc.name
        );
        let response = app
            .edge
            .call(method.clone(), &path, body.as_ref(), Some(TOKEN))
            .await;
        assert!(
            response.status().is_success(),
            "{method} {path} ({}): {}",
            rpc.name,
            response.status()
        );
        // An event stream stays open: its headers are the answer.
        drop(response);

        let calls = path_fields_received(&app.chat, &rpc.name);
        assert_eq!(calls.len(), 1, "{method} {path} calls {} once", rpc.name);
        let received: BTreeMap<String, String> = calls[0]
            .iter()
            .filter(|(field, _)| expected.contains_key(*field))
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        assert_eq!(received, expected, "{method} {path} → {}", rpc.name);
    }
}

/// A valid REST body for the RPCs whose rule has one.
fn body_sample(rpc: &str) -> Option<Value> {
    match rpc {
        "SendMessage" => Some(json!({ "content": "hello" })),
        "BanUser" => Some(json!({ "userId": "64d15f9e2e6c8f4d5a1230d4" })),
        _ => None,
    }
}

/// The string fields of each call of `rpc` the fake received, by proto name.
fn path_fields_received(chat: &FakeChatServer, rpc: &str) -> Vec<BTreeMap<String, String>> {
    fn fields<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }
    match rpc {
        "SendMessage" => chat
            .calls::<rpc::SendMessage>()
            .iter()
            .map(|call| fields([("stream_id", &call.request.stream_id)]))
            .collect(),
        "ListMessages" => chat
            .calls::<rpc::ListMessages>()
            .iter()
            .map(|call| fields([("stream_id", &call.request.stream_id)]))
            .collect(),
        "SubscribeMessages" => chat
            .calls::<rpc::SubscribeMessages>()
            .iter()
            .map(|call| fields([("stream_id", &call.request.stream_id)]))
            .collect(),
        "DeleteMessage" => chat
            .calls::<rpc::DeleteMessage>()
            .iter()
            .map(|call| {
                fields([
                    ("stream_id", &call.request.stream_id),
                    ("message_id", &call.request.message_id),
                ])
            })
            .collect(),
        "BanUser" => chat
            .calls::<rpc::BanUser>()
            .iter()
            .map(|call| fields([("stream_id", &call.request.stream_id)]))
            .collect(),
        "UnbanUser" => chat
            .calls::<rpc::UnbanUser>()
            .iter()
            .map(|call| {
                fields([
                    ("stream_id", &call.request.stream_id),
                    ("user_id", &call.request.user_id),
                ])
            })
            .collect(),
        "AddModerator" => chat
            .calls::<rpc::AddModerator>()
            .iter()
            .map(|call| {
                fields([
                    ("stream_id", &call.request.stream_id),
                    ("user_id", &call.request.user_id),
                ])
            })
            .collect(),
        "RemoveModerator" => chat
            .calls::<rpc::RemoveModerator>()
            .iter()
            .map(|call| {
                fields([
                    ("stream_id", &call.request.stream_id),
                    ("user_id", &call.request.user_id),
                ])
            })
            .collect(),
        other => panic!("add {other} to path_fields_received"),
    }
}
