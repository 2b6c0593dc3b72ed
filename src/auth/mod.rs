//! Signing in to the org: the browser login (OAuth authorization code with PKCE) that
//! yields a refresh token, and the vault that keeps that grant sealed at rest.

pub mod login;
pub mod vault;
