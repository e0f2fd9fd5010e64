//! Every route of the edge that needs credentials, as a table that the
//! rules all routes share (rejections.rs, grpc_errors.rs) iterate over, so
//! that a new route is one row.

use reqwest::Method;
use serde_json::{Value, json};
use tonic::Status;

use crate::fake_chat::{FakeChatServer, rpc};
use crate::helpers::{
    STREAM_ID, TestApp, ban_path, bans_path, events_path, message_item_path, message_path,
    moderator_path,
};

/// A user the routes name (banned, appointed).
pub const USER_ID: &str = "64d15f9e2e6c8f4d5a123333";
pub const MESSAGE_ID: &str = "64d15f9e2e6c8f4d5a123456";
/// What a request without any credentials is told (the events route also
/// takes a query token, and says so).
pub const MISSING_HEADER: &str = "Authorization header is missing";

/// One route that needs credentials, with a request it would accept.
pub struct Route {
    pub method: Method,
    pub path: String,
    /// Its JSON body, for the routes that take one.
    pub body: Option<Value>,
    /// What a request without any credentials is told.
    pub missing: &'static str,
    /// Scripts the fake to answer this route's RPC with `status`.
    pub fail: fn(&FakeChatServer, Status),
}

impl Route {
    fn new(
        method: Method,
        path: String,
        body: Option<Value>,
        fail: fn(&FakeChatServer, Status),
    ) -> Self {
        Self {
            method,
            path,
            body,
            missing: MISSING_HEADER,
            fail,
        }
    }

    /// Sends the route's request to `path_suffix` appended, with `headers`
    /// (and no others).
    pub async fn call(
        &self,
        app: &TestApp,
        path_suffix: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let path = format!("{}{path_suffix}", self.path);
        let mut request = app.edge.request(self.method.clone(), &path, None);
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the edge answers")
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every route that needs credentials.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            message_path(STREAM_ID),
            Some(json!({"content": "hi"})),
            |chat, status| chat.fail::<rpc::SendMessage>(status),
        ),
        Route::new(
            Method::GET,
            message_path(STREAM_ID),
            None,
            |chat, status| chat.fail::<rpc::ListMessages>(status),
        ),
        Route::new(
            Method::DELETE,
            message_item_path(STREAM_ID, MESSAGE_ID),
            None,
            |chat, status| chat.fail::<rpc::DeleteMessage>(status),
        ),
        Route::new(
            Method::POST,
            bans_path(STREAM_ID),
            Some(json!({"userId": USER_ID})),
            |chat, status| chat.fail::<rpc::BanUser>(status),
        ),
        Route::new(
            Method::DELETE,
            ban_path(STREAM_ID, USER_ID),
            None,
            |chat, status| chat.fail::<rpc::UnbanUser>(status),
        ),
        Route::new(
            Method::PUT,
            moderator_path(STREAM_ID, USER_ID),
            None,
            |chat, status| chat.fail::<rpc::AddModerator>(status),
        ),
        Route::new(
            Method::DELETE,
            moderator_path(STREAM_ID, USER_ID),
            None,
            |chat, status| chat.fail::<rpc::RemoveModerator>(status),
        ),
        Route {
            missing: "Authorization header or access_token query parameter is missing",
            ..Route::new(
                Method::GET,
                events_path(STREAM_ID, ""),
                None,
                |chat, status| chat.fail::<rpc::SubscribeMessages>(status),
            )
        },
    ]
}

/// The routes that take a JSON body, with one they would accept.
pub fn body_routes() -> Vec<Route> {
    routes()
        .into_iter()
        .filter(|route| route.body.is_some())
        .collect()
}
