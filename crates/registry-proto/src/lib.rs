//! The gRPC contracts between Berth's services, generated from `proto/`.

/// `registry.auth.v1`: the Authenticator service of auth-service.
pub mod auth {
    #![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
    tonic::include_proto!("registry.auth.v1");
}

/// `registry.maintenance.v1`: the Maintenance service of registry-api.
pub mod maintenance {
    #![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
    tonic::include_proto!("registry.maintenance.v1");
}
