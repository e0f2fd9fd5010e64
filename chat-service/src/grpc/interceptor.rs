//! The interceptor in front of both services: authenticates the call and
//! puts the caller's [`Identity`](crate::auth::Identity) into the request
//! extensions, where handlers read it.

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::Authenticator;
use crate::error::ChatError;

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.authenticate(request.metadata()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                Ok(request)
            }
            Err(error) => {
                tracing::info!(reason = %error, "rejected unauthenticated call");
                Err(ChatError::Unauthenticated(error).into())
            }
        }
    }
}
