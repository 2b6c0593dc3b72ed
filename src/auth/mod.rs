//! Signing in to the org: the browser login (OAuth authorization code with PKCE) that
//! yields a refresh token, the vault that keeps that grant sealed at rest, and where a
//! rotated refresh token is kept.

pub mod login;
pub mod rotation;
pub mod vault;
