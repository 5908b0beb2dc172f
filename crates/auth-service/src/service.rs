//! The `registry.auth.v1.Authenticator` gRPC service over the files in force.

use std::sync::Arc;

use registry_proto::auth::authenticator_server::Authenticator;
use registry_proto::auth::{
    Action as ProtoAction, AuthorizeRequest, AuthorizeResponse, RepositoryGrant, StatusRequest,
    StatusResponse, VerifyOutcome, VerifyRequest, VerifyResponse,
};
use tonic::{Request, Response, Status};

use crate::files::Files;
use crate::policy::{ALL_ACTIONS, Action};

/// Requests may not name more repositories than this at once.
const MAX_REPOSITORIES: usize = 100_000;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AuthenticatorService {
    files: Arc<Files>,
}

impl AuthenticatorService {
    pub fn new(files: Arc<Files>) -> Self {
        AuthenticatorService { files }
    }
}

fn to_proto(action: Action) -> i32 {
    let action = match action {
        Action::Pull => ProtoAction::Pull,
        Action::Push => ProtoAction::Push,
        Action::Delete => ProtoAction::Delete,
    };
    action as i32
}

#[tonic::async_trait]
impl Authenticator for AuthenticatorService {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let VerifyRequest { username, password } = request.into_inner();
        let loaded = self.files.current();
        let generation = loaded.generation;
        let accepted = tokio::task::spawn_blocking(move || {
            loaded
                .users
                .verify(&username, &password)
                .then_some(username)
        })
        .await
        .map_err(|_| Status::internal("verification failed"))?;
        let (outcome, principal) = match accepted {
            Some(user) => (VerifyOutcome::Accepted, user),
            None => (VerifyOutcome::Rejected, String::new()),
        };
        Ok(Response::new(VerifyResponse {
            outcome: outcome as i32,
            principal,
            generation,
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let request = request.into_inner();
        if request.repositories.len() > MAX_REPOSITORIES {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_REPOSITORIES} repositories per request"
            )));
        }
        let loaded = self.files.current();
        let principal = Some(request.principal.as_str()).filter(|principal| !principal.is_empty());
        let grants = request
            .repositories
            .into_iter()
            .map(|repository| {
                let actions: Vec<i32> = match (&loaded.policy, principal) {
                    (Some(policy), _) => policy
                        .allowed(principal, &repository)
                        .into_iter()
                        .map(to_proto)
                        .collect(),
                    (None, Some(_)) => ALL_ACTIONS.into_iter().map(to_proto).collect(),
                    (None, None) => Vec::new(),
                };
                RepositoryGrant {
                    repository,
                    actions,
                }
            })
            .collect();
        Ok(Response::new(AuthorizeResponse {
            grants,
            generation: loaded.generation,
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let loaded = self.files.current();
        Ok(Response::new(StatusResponse {
            generation: loaded.generation,
            users: u32::try_from(loaded.users.len()).unwrap_or(u32::MAX),
            refused_lines: u32::try_from(loaded.users.refused.len()).unwrap_or(u32::MAX),
            policy: loaded.policy.is_some(),
            failed_reloads: self.files.failed_reloads(),
        }))
    }
}
